/* A stand-in for the page's generated assets (see web-assets-stub.h): one page saying it is coming. */
#include <string.h>

#include "web/assets.h"

static const unsigned char index_html[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>homecare-gw</title></head>\n<body><h1>homecare-gw</h1><p>page coming</p></body></html>\n";

static const WebAsset assets[] = {
    {"/index.html", "text/html; charset=utf-8", index_html, sizeof index_html - 1},
};

const WebAsset *web_asset_find(const char *path)
{
        for (size_t i = 0; i < sizeof assets / sizeof assets[0]; i++)
                if (strcmp(assets[i].path, path) == 0)
                        return &assets[i];
        return NULL;
}
