/* Files for the tests of the SQLite stores (test-sqlite.c, test-devices.c): a store and its -wal
 * and -shm removed, a whole file read to compare bytes. Header-only. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Removes path and its -wal and -shm; missing ones are fine. */
static inline void test_remove_store(const char *path)
{
        static const char *const suffix[] = {"", "-wal", "-shm"};
        char p[512];

        for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
                snprintf(p, sizeof p, "%s%s", path, suffix[i]);
                unlink(p);
        }
}

/* The whole file, malloc'd (its size in *ret_len), or NULL. */
static inline char *test_read_file(const char *path, size_t *ret_len)
{
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        long n;

        if (!f)
                return NULL;
        if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
            (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n)
                *ret_len = (size_t)n;
        else {
                free(buf);
                buf = NULL;
        }
        fclose(f);
        return buf;
}
