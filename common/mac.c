#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/hex.h"
#include "common/mac.h"

int parse_mac(const char *s, uint8_t ret[6])
{
        uint8_t m[6];

        if (!s)
                return -EINVAL;
        for (int i = 0; i < 6; i++) {
                int hi = unhexchar(s[0]), lo = hi < 0 ? -1 : unhexchar(s[1]);
                if (hi < 0 || lo < 0 || (i < 5 ? s[2] != ':' : s[2] != '\0'))
                        return -EINVAL;
                m[i] = (uint8_t)(hi << 4 | lo);
                s += 3;
        }
        memcpy(ret, m, 6);
        return 0;
}

char *format_mac(const uint8_t a[6], char buf[static MAC_STRING_MAX])
{
        snprintf(buf, MAC_STRING_MAX, "%02X:%02X:%02X:%02X:%02X:%02X", a[0], a[1], a[2], a[3], a[4], a[5]);
        return buf;
}
