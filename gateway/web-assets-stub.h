/* The page's assets, as the page's build (web/, library hcgw-web-assets) provides them in web/assets.h.
 * This is a stand-in with the same contract, installed as web/assets.h in the build tree only while
 * the tree has no web/assets.h of its own (see CMakeLists.txt), so that the server builds alone. */
#pragma once

#include <stddef.h>

typedef struct WebAsset {
        const char *path;         /* "/index.html", "/app.js", ... */
        const char *content_type; /* "text/html; charset=utf-8", ... */
        const unsigned char *data;
        size_t size;
} WebAsset;

/* The asset at path (borrowed for the call), or NULL if none. The result is static, valid for ever. */
const WebAsset *web_asset_find(const char *path);
