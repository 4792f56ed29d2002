/* model_gguf.c -- GGUF models (in progress: refused for now). */
#include "config.h"

#include "server/model_int.h"

int model_load_gguf(struct model *m, const char *path, const uint8_t *data, size_t len, struct err *e)
{
    (void)m;
    (void)data;
    (void)len;
    return err_at(e, path, 0, "GGUF models are not supported yet");
}
