/* libFuzzer target: downlink command payloads from MQTT. The first byte picks the command name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/command.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const names[] = {"test-alarm", "status", "observation", "reboot"};
        const char *err = NULL;
        Command c;

        if (size < 1)
                return 0;
        if (command_parse(names[data[0] % 4], data + 1, size - 1, &c, &err) == 0) {
                if (strlen(c.request_id) >= sizeof c.request_id || strlen(c.message) >= sizeof c.message)
                        abort();
        } else if (!err)
                abort();
        return 0;
}
