/* libFuzzer target: the configuration parser (files written by technicians and tools). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gateway/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        FILE *f = fmemopen((void *)data, size, "r");
        Config *c = NULL;
        char *err = NULL;

        if (!f)
                return 0;
        if (config_parse(f, "fuzz.conf", &c, &err) == 0) {
                if (!c->gateway_id || !c->broker_host)
                        abort(); /* required keys must be there when parsing succeeds */
                config_free(c);
        } else if (!err)
                abort(); /* every failure says what is wrong */
        free(err);
        fclose(f);
        return 0;
}
