/* The page's files are compiled in (web/embed-assets.cmake): each is found at its path with the
 * content type its extension asks for, byte for byte as in web/static/, and nothing else is found. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "test.h"
#include "web/assets.h"

/* web/static/ of the source tree, from CMake. */
static const char *static_dir = HCGW_WEB_STATIC_DIR;

static const char *type_for(const char *path)
{
        const char *dot = strrchr(path, '.');

        if (streq(path, "/"))
                return "text/html; charset=utf-8";
        if (!dot)
                return NULL;
        if (streq(dot, ".html"))
                return "text/html; charset=utf-8";
        if (streq(dot, ".js"))
                return "text/javascript; charset=utf-8";
        if (streq(dot, ".css"))
                return "text/css; charset=utf-8";
        if (streq(dot, ".svg"))
                return "image/svg+xml";
        if (streq(dot, ".png"))
                return "image/png";
        return NULL;
}

/* The file as web/static/ holds it; NULL if it cannot be read. */
static unsigned char *read_source(const char *path, size_t *ret_size)
{
        char name[4096];
        unsigned char *buf = NULL;
        long n;
        FILE *f;

        snprintf(name, sizeof(name), "%s%s", static_dir, streq(path, "/") ? "/index.html" : path);
        f = fopen(name, "rb");
        if (!f)
                return NULL;
        if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
                buf = malloc((size_t)n + 1);
                if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
                        free(buf);
                        buf = NULL;
                }
                *ret_size = (size_t)n;
        }
        fclose(f);
        return buf;
}

static void test_every_asset_found_with_its_type(void)
{
        size_t n;
        const WebAsset *all = web_assets(&n);

        CHECK(n >= 4); /* index.html, app.js, style.css, and "/" */
        for (size_t i = 0; i < n; i++) {
                const WebAsset *a = web_asset_find(all[i].path);
                _cleanup_free_ unsigned char *src = NULL;
                size_t size = 0;

                CHECK(a == &all[i]);
                CHECK(type_for(all[i].path) != NULL);
                CHECK_STREQ(all[i].content_type, type_for(all[i].path));
                src = read_source(all[i].path, &size);
                CHECK(src != NULL);
                CHECK(all[i].size == size);
                CHECK(memcmp(all[i].data, src, size) == 0);
                CHECK(all[i].data[all[i].size] == 0); /* NUL after the data, for text */
        }
}

static void test_the_page_is_there(void)
{
        const char *paths[] = {"/", "/index.html", "/app.js", "/style.css"};
        const char *types[] = {"text/html; charset=utf-8", "text/html; charset=utf-8",
                               "text/javascript; charset=utf-8", "text/css; charset=utf-8"};

        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                const WebAsset *a = web_asset_find(paths[i]);
                CHECK(a != NULL);
                CHECK_STREQ(a->content_type, types[i]);
                CHECK(a->size > 0);
        }
        CHECK(web_asset_find("/") != web_asset_find("/index.html"));
        CHECK(web_asset_find("/")->data == web_asset_find("/index.html")->data);
}

static void test_nothing_else_is_found(void)
{
        const char *paths[] = {
            "",           "index.html",     "/index.htm",  "/INDEX.HTML", "/app.js?x=1",
            "/../app.js", "/static/app.js", "//app.js",    "/app.js/",    "/embed-assets.cmake",
            "/assets.h",  "/.gitignore",    "/api/status", "/style.css\n"};

        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                CHECK(web_asset_find(paths[i]) == NULL);
        CHECK(web_asset_find(NULL) == NULL);
}

TEST_MAIN(TEST(test_every_asset_found_with_its_type), TEST(test_the_page_is_there),
          TEST(test_nothing_else_is_found))
