#include <string.h>

#include "web/assets.h"

/* From the generated web-assets-data.c: the files of web/static/, in name order, "/" last. */
extern const WebAsset web_assets_table[];
extern const size_t web_assets_table_n;

const WebAsset *web_asset_find(const char *path)
{
        if (!path)
                return NULL;
        /* A handful of files: a linear scan costs less than anything cleverer. */
        for (size_t i = 0; i < web_assets_table_n; i++)
                if (strcmp(web_assets_table[i].path, path) == 0)
                        return &web_assets_table[i];
        return NULL;
}

const WebAsset *web_assets(size_t *ret_n)
{
        *ret_n = web_assets_table_n;
        return web_assets_table;
}
