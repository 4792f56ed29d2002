/* chat.c -- chat templates: a conversation rendered into the token ids of a
 * prompt that ends where the assistant's reply begins.
 *
 *  - llama2 (Meta's chat_completion in llama/generation.py): an optional
 *    first system message is folded into the first user message as
 *    "<<SYS>>\n{system}\n<</SYS>>\n\n{user}"; then each user/assistant pair
 *    is  BOS "[INST] {user} [/INST] {answer} " EOS  and the final user
 *    message  BOS "[INST] {user} [/INST]"  (contents stripped of
 *    surrounding white space).  Roles must alternate user, assistant, ...,
 *    user.
 *  - chatml: BOS (when the vocabulary uses one), then per message "<|im_start|>{role}\n{content}<|im_end|>\n",
 *    then "<|im_start|>assistant\n".  <|im_start|> and <|im_end|> are their
 *    special tokens when the vocabulary has them (else plain text).  Text
 *    between special tokens is encoded with SentencePiece's dummy-prefix
 *    space, as llama.cpp does for SentencePiece vocabularies.
 *  - zephyr (TinyLlama-Chat's template as Hugging Face renders it): BOS,
 *    then per message "<|{role}|>\n{content}</s>\n", then "<|assistant|>\n";
 *    "</s>" is the EOS token.
 *  - raw: BOS and the contents joined by newlines (story models). */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "server/tokenizer.h"

int chat_template_parse(const char *name, enum chat_template *out)
{
    static const struct {
        const char *name;
        enum chat_template t;
    } names[] = {{"auto", CHAT_TEMPLATE_AUTO},
                 {"llama2", CHAT_TEMPLATE_LLAMA2},
                 {"chatml", CHAT_TEMPLATE_CHATML},
                 {"zephyr", CHAT_TEMPLATE_ZEPHYR},
                 {"raw", CHAT_TEMPLATE_RAW}};

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].t;
            return 0;
        }
    return -1;
}

enum chat_template chat_template_detect(const char *metadata_template)
{
    if (metadata_template == NULL)
        return CHAT_TEMPLATE_LLAMA2;
    if (strstr(metadata_template, "<|im_start|>") != NULL)
        return CHAT_TEMPLATE_CHATML;
    if (strstr(metadata_template, "<|user|>") != NULL && strstr(metadata_template, "<|assistant|>") != NULL)
        return CHAT_TEMPLATE_ZEPHYR;
    return CHAT_TEMPLATE_LLAMA2; /* "[INST]" templates, and the default for anything else */
}

const char *chat_template_name(enum chat_template t)
{
    switch (t) {
    case CHAT_TEMPLATE_AUTO:
        return "auto";
    case CHAT_TEMPLATE_LLAMA2:
        return "llama2";
    case CHAT_TEMPLATE_CHATML:
        return "chatml";
    case CHAT_TEMPLATE_RAW:
        return "raw";
    case CHAT_TEMPLATE_ZEPHYR:
        return "zephyr";
    }
    return "unknown";
}

/* ---- building the ids ------------------------------------------------------------- */

struct chat_out {
    const struct tokenizer *t;
    int *ids;
    int n, cap;
    char *text; /* text waiting to be encoded */
    size_t len, text_cap;
    struct err *e;
    int failed;
};

static void out_id(struct chat_out *o, int id)
{
    if (o->failed)
        return;
    if (o->n == o->cap) {
        int cap = o->cap ? o->cap * 2 : 64;
        int *ids = realloc(o->ids, (size_t)cap * sizeof *ids);
        if (ids == NULL) {
            o->failed = 1;
            err_set(o->e, ERR_SYSTEM, "chat template: out of memory");
            return;
        }
        o->ids = ids;
        o->cap = cap;
    }
    o->ids[o->n++] = id;
}

static void out_text(struct chat_out *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (o->len + n + 1 > o->text_cap) {
        size_t cap = (o->len + n + 1) * 2;
        char *p = realloc(o->text, cap);
        if (p == NULL) {
            o->failed = 1;
            err_set(o->e, ERR_SYSTEM, "chat template: out of memory");
            return;
        }
        o->text = p;
        o->text_cap = cap;
    }
    memcpy(o->text + o->len, s, n);
    o->len += n;
}

static void out_str(struct chat_out *o, const char *s)
{
    out_text(o, s, strlen(s));
}

/* Content S without the white space around it. */
static void out_stripped(struct chat_out *o, const char *s)
{
    size_t n = strlen(s);

    while (n > 0 && isspace((unsigned char)*s))
        s++, n--;
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    out_text(o, s, n);
}

/* Encode the waiting text (if any) and append its ids. */
static void out_flush(struct chat_out *o)
{
    int *ids, n;

    if (o->failed || o->len == 0)
        return;
    if (tokenizer_encode(o->t, o->text, o->len, 0, 0, &ids, &n, o->e) < 0) {
        o->failed = 1;
        return;
    }
    o->len = 0;
    for (int i = 0; i < n; i++)
        out_id(o, ids[i]);
    free(ids);
}

/* BOS, when the vocabulary starts prompts with it. */
static void out_bos(struct chat_out *o)
{
    if (tokenizer_adds_bos(o->t))
        out_id(o, tokenizer_bos(o->t));
}

/* A special token by its piece, or its text when the vocabulary lacks it. */
static void out_special(struct chat_out *o, const char *piece)
{
    int id = tokenizer_find(o->t, piece);

    if (id < 0) {
        out_str(o, piece);
        return;
    }
    out_flush(o);
    out_id(o, id);
}

static int render_llama2(struct chat_out *o, const struct chat_message *msgs, int n)
{
    int i = 0;
    const char *system = NULL;

    if (n > 0 && strcmp(msgs[0].role, "system") == 0) {
        system = msgs[0].content;
        i = 1;
    }
    if (i >= n)
        return err_set(o->e, ERR_INPUT, "messages: the conversation has no user message");
    for (int turn = 0; i < n; i += 2, turn++) {
        if (strcmp(msgs[i].role, "user") != 0)
            return err_set(o->e, ERR_INPUT,
                           "messages[%d]: role '%s': the llama2 template needs user and assistant turns "
                           "alternating, starting and ending with user (a system message only first)",
                           i, msgs[i].role);
        if (i + 1 < n && strcmp(msgs[i + 1].role, "assistant") != 0)
            return err_set(o->e, ERR_INPUT,
                           "messages[%d]: role '%s' after a user message: the llama2 template needs "
                           "user and assistant turns alternating",
                           i + 1, msgs[i + 1].role);
        out_bos(o);
        out_str(o, "[INST] ");
        if (turn == 0 && system != NULL) {
            out_str(o, "<<SYS>>\n");
            out_stripped(o, system);
            out_str(o, "\n<</SYS>>\n\n");
        }
        out_stripped(o, msgs[i].content);
        out_str(o, " [/INST]");
        if (i + 1 < n) {
            out_str(o, " ");
            out_stripped(o, msgs[i + 1].content);
            out_str(o, " ");
            out_flush(o);
            out_id(o, tokenizer_eos(o->t));
        }
    }
    out_flush(o);
    return 0;
}

static int render_chatml(struct chat_out *o, const struct chat_message *msgs, int n)
{
    out_bos(o);
    for (int i = 0; i < n; i++) {
        out_special(o, "<|im_start|>");
        out_str(o, msgs[i].role);
        out_str(o, "\n");
        out_str(o, msgs[i].content);
        out_special(o, "<|im_end|>");
        out_str(o, "\n");
    }
    out_special(o, "<|im_start|>");
    out_str(o, "assistant\n");
    out_flush(o);
    return 0;
}

static int render_zephyr(struct chat_out *o, const struct chat_message *msgs, int n)
{
    out_bos(o);
    for (int i = 0; i < n; i++) {
        out_str(o, "<|");
        out_str(o, msgs[i].role);
        out_str(o, "|>\n");
        out_str(o, msgs[i].content);
        out_flush(o);
        out_id(o, tokenizer_eos(o->t));
        out_str(o, "\n");
    }
    out_str(o, "<|assistant|>\n");
    out_flush(o);
    return 0;
}

static int render_raw(struct chat_out *o, const struct chat_message *msgs, int n)
{
    out_bos(o);
    for (int i = 0; i < n; i++) {
        if (i > 0)
            out_str(o, "\n");
        out_str(o, msgs[i].content);
    }
    out_flush(o);
    return 0;
}

int chat_encode(const struct tokenizer *t, enum chat_template tmpl, const struct chat_message *msgs, int n_msgs,
                int **ids, int *n, struct err *e)
{
    struct chat_out o = {.t = t, .e = e};
    int rc;

    *ids = NULL;
    *n = 0;
    for (int i = 0; i < n_msgs; i++) {
        if (msgs[i].role == NULL || msgs[i].content == NULL)
            return err_set(e, ERR_INPUT, "messages[%d]: role and content are required", i);
        if (strcmp(msgs[i].role, "system") != 0 && strcmp(msgs[i].role, "user") != 0 &&
            strcmp(msgs[i].role, "assistant") != 0)
            return err_set(e, ERR_INPUT, "messages[%d]: role '%s': expected system, user or assistant", i,
                           msgs[i].role);
    }
    switch (tmpl) {
    case CHAT_TEMPLATE_CHATML:
        rc = render_chatml(&o, msgs, n_msgs);
        break;
    case CHAT_TEMPLATE_RAW:
        rc = render_raw(&o, msgs, n_msgs);
        break;
    case CHAT_TEMPLATE_ZEPHYR:
        rc = render_zephyr(&o, msgs, n_msgs);
        break;
    case CHAT_TEMPLATE_AUTO:
    case CHAT_TEMPLATE_LLAMA2:
    default:
        rc = render_llama2(&o, msgs, n_msgs);
        break;
    }
    free(o.text);
    if (rc < 0 || o.failed) {
        free(o.ids);
        return -1;
    }
    *ids = o.ids;
    *n = o.n;
    return 0;
}
