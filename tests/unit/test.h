/* A minimal test harness: CHECK() records a failure and goes on; main() runs the table and prints
 * "N passed, N failed" (the line CI reads). Exit status 1 if anything failed. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned test_failed_checks;

#define CHECK(cond)                                                                                         \
        do {                                                                                                \
                if (!(cond)) {                                                                              \
                        fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);            \
                        test_failed_checks++;                                                               \
                }                                                                                           \
        } while (0)

#define CHECK_STREQ(a, b)                                                                                   \
        do {                                                                                                \
                const char *_a = (a), *_b = (b);                                                            \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                                    \
                        fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" vs \"%s\")\n", __FILE__,     \
                                __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)");                  \
                        test_failed_checks++;                                                               \
                }                                                                                           \
        } while (0)

typedef struct TestCase {
        const char *name;
        void (*fn)(void);
} TestCase;

#define TEST(name)                                                                                          \
        {                                                                                                   \
#name, name                                                                                 \
        }

static inline int test_run(const TestCase *tests, size_t n)
{
        unsigned passed = 0, failed = 0;
        for (size_t i = 0; i < n; i++) {
                unsigned before = test_failed_checks;
                tests[i].fn();
                if (test_failed_checks == before) {
                        passed++;
                        printf("PASS %s\n", tests[i].name);
                } else {
                        failed++;
                        printf("FAIL %s\n", tests[i].name);
                }
        }
        printf("%u passed, %u failed\n", passed, failed);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
#define TEST_MAIN(...)                                                                                      \
        int main(void)                                                                                      \
        {                                                                                                   \
                static const TestCase tests[] = {__VA_ARGS__};                                              \
                return test_run(tests, sizeof tests / sizeof tests[0]);                                     \
        }
