/* One pattern for every enum <-> name table (sensor types, metrics, alert kinds, lanes):
 *
 *     static const char *const gpio_kind_table[_GPIO_KIND_MAX] = {[GPIO_DOOR] = "door", ...};
 *     DEFINE_STRING_TABLE_LOOKUP(gpio_kind, GpioKind, gpio_kind_table, _GPIO_KIND_MAX);
 *
 * defines
 *     const char *gpio_kind_name(GpioKind k);   the name, a static string; NULL out of range or unnamed
 *     int gpio_kind_from_name(const char *s, GpioKind *ret);   0, or -EINVAL for an unknown name
 *
 * The table is indexed by the enum, so a name sits next to its value; entries left NULL are never
 * matched. Header-only, includes nothing of ours. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define DEFINE_STRING_TABLE_LOOKUP_TO_NAME(prefix, type, table, max)                                        \
        const char *prefix##_name(type i)                                                                   \
        {                                                                                                   \
                if ((size_t)i >= (size_t)(max))                                                             \
                        return NULL;                                                                        \
                return (table)[i];                                                                          \
        }

#define DEFINE_STRING_TABLE_LOOKUP_FROM_NAME(prefix, type, table, max)                                      \
        int prefix##_from_name(const char *s, type *ret)                                                    \
        {                                                                                                   \
                if (!s)                                                                                     \
                        return -EINVAL;                                                                     \
                for (size_t _i = 0; _i < (size_t)(max); _i++)                                               \
                        if ((table)[_i] && strcmp((table)[_i], s) == 0) {                                   \
                                *ret = (type)_i;                                                            \
                                return 0;                                                                   \
                        }                                                                                   \
                return -EINVAL;                                                                             \
        }

#define DEFINE_STRING_TABLE_LOOKUP(prefix, type, table, max)                                                \
        DEFINE_STRING_TABLE_LOOKUP_TO_NAME(prefix, type, table, max)                                        \
        DEFINE_STRING_TABLE_LOOKUP_FROM_NAME(prefix, type, table, max)
