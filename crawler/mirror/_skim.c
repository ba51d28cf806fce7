/* The link spots of an HTML document, read tag by tag in C: skim.py's compiled path.
 *
 * It reads a document as tags.read_tags does (the tokenizer's reference, in Python), with the
 * same grammar for comments, doctypes, end tags, start tags and their four ways of writing an
 * attribute value, and raw-text elements. A tag is settled here when its links are plain: a
 * tag of tags.URL_ATTRIBUTES (<a href>, <img src>, <script src>...), a <link href> and an
 * <input type=image src>, without a style or lazy attribute (url(), lazily loaded images) or a
 * srcset. Every other tag that may hold a link -- <meta>, <base>, <style>, srcsets, style and
 * lazy attributes on any tag -- is *handed back*: its position goes to Python, which reads it
 * with tags.read_construct, so what is subtle is written once. Tags that hold no link are
 * skipped. `tables()` gives the tables below to Python, whose test checks them against
 * tags.py's.
 *
 * The reading of a large document runs without the GIL (the document is an immutable bytes
 * object, kept alive by the caller); the Spot tuples are made afterwards. tests/test_links.py checks the
 * result against tags.read_tags on random documents, bench/tokenizer_check.py on real sites.
 */
#define PY_SSIZE_T_CLEAN
#ifndef SOURCE_SHA256 /* setup.py defines it: the test that the extension is this source, built */
#define SOURCE_SHA256 ""
#endif
#include <Python.h>
#include <string.h>

enum { PAGE = 0, REQUISITE = 1 };
enum { QUOTE_DOUBLE = 0, QUOTE_SINGLE = 1, QUOTE_NONE = 2 };

/* What a tag name means for its links. */
enum {
    URL = 1,        /* has attributes that hold one URL each (tags.URL_ATTRIBUTES) */
    RAW_TEXT = 2,   /* its content is text up to its end tag (tags.RAW_TEXT) */
    HAND_BACK = 4,  /* always read by Python: link, meta, base, input, style */
    SRCSET = 8,     /* may hold a srcset: handed back when it does */
    PLAINTEXT = 16, /* the rest of the document is text */
    LINK_REL = 32,  /* <link>: its href is a requisite or a page by its rel (attributes[2]) */
    IMAGE_INPUT = 64, /* <input>: its src is a link when its type (attributes[2]) is image */
};

typedef struct {
    const char *name;
    int flags;
    /* up to two URL attributes in the order tags._tag_spots yields them, then one that decides */
    const char *attributes[3];
    unsigned char kinds[2];
} TagInfo;

static const TagInfo TAGS[] = {
    {"a", URL, {"href", NULL}, {PAGE}},
    {"area", URL, {"href", NULL}, {PAGE}},
    {"script", URL | RAW_TEXT, {"src", NULL}, {REQUISITE}},
    {"img", URL | SRCSET, {"src", "lowsrc"}, {REQUISITE, REQUISITE}},
    {"source", URL | SRCSET, {"src", NULL}, {REQUISITE}},
    {"video", URL, {"src", "poster"}, {REQUISITE, REQUISITE}},
    {"audio", URL, {"src", NULL}, {REQUISITE}},
    {"track", URL, {"src", NULL}, {REQUISITE}},
    {"iframe", URL | RAW_TEXT, {"src", NULL}, {REQUISITE}},
    {"frame", URL, {"src", NULL}, {REQUISITE}},
    {"object", URL, {"data", NULL}, {REQUISITE}},
    {"embed", URL, {"src", NULL}, {REQUISITE}},
    {"body", URL, {"background", NULL}, {REQUISITE}},
    {"table", URL, {"background", NULL}, {REQUISITE}},
    {"td", URL, {"background", NULL}, {REQUISITE}},
    {"th", URL, {"background", NULL}, {REQUISITE}},
    {"image", URL, {"href", "xlink:href"}, {REQUISITE, REQUISITE}},
    {"use", URL, {"href", "xlink:href"}, {REQUISITE, REQUISITE}},
    {"link", LINK_REL, {"href", NULL, "rel"}, {PAGE}},
    {"input", IMAGE_INPUT, {"src", NULL, "type"}, {REQUISITE}},
    {"meta", HAND_BACK, {NULL, NULL}, {0}},
    {"base", HAND_BACK, {NULL, NULL}, {0}},
    {"style", HAND_BACK | RAW_TEXT, {NULL, NULL}, {0}},
    {"textarea", RAW_TEXT, {NULL, NULL}, {0}},
    {"title", RAW_TEXT, {NULL, NULL}, {0}},
    {"xmp", RAW_TEXT, {NULL, NULL}, {0}},
    {"noembed", RAW_TEXT, {NULL, NULL}, {0}},
    {"noframes", RAW_TEXT, {NULL, NULL}, {0}},
    {"plaintext", PLAINTEXT, {NULL, NULL}, {0}},
};
#define TAG_COUNT (sizeof(TAGS) / sizeof(TAGS[0]))
#define LONGEST_TAG 9 /* "plaintext" */
/* <link rel=...> values whose target is part of the page (tags.REQUISITE_RELS) */
static const char *REQUISITE_RELS[] = {
    "stylesheet", "icon", "shortcut", "apple-touch-icon", "apple-touch-icon-precomposed", "mask-icon",
    "preload", "prefetch", "modulepreload", "manifest", "image_src",
};
#define REL_COUNT (sizeof(REQUISITE_RELS) / sizeof(REQUISITE_RELS[0]))
/* Attributes that give any tag a link: style's url(), lazily loaded images (tags.LAZY_ATTRIBUTES). */
static const char *SPECIAL[] = {"style", "data-src", "data-lazy-src", "data-original", "data-srcset", "data-bg"};
#define SPECIAL_COUNT (sizeof(SPECIAL) / sizeof(SPECIAL[0]))
static Py_ssize_t SPECIAL_LENGTHS[SPECIAL_COUNT]; /* set by index_tags */

typedef struct { Py_ssize_t start, end; unsigned char kind, quote; } SpotRecord;
typedef struct { Py_ssize_t before_spot, position; } HandedBack; /* read before spot number before_spot */

typedef struct {
    const unsigned char *body;
    Py_ssize_t length;
    SpotRecord *spots;
    Py_ssize_t spot_count, spot_room;
    HandedBack *handed_back;
    Py_ssize_t handed_back_count, handed_back_room;
    int out_of_memory;
} Reading;

/* Python's \s for bytes: space, \t, \n, \r, \f, \v. */
static inline int is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static inline int is_letter(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static inline unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? c | 0x20 : c; }

static int grow(void **items, Py_ssize_t *room, size_t size) {
    Py_ssize_t wanted = *room ? *room * 2 : 64;
    void *grown = PyMem_RawRealloc(*items, (size_t)wanted * size);
    if (grown == NULL) return 0;
    *items = grown;
    *room = wanted;
    return 1;
}

static void add_spot(Reading *r, Py_ssize_t start, Py_ssize_t end, unsigned char kind, unsigned char quote) {
    if (r->spot_count == r->spot_room && !grow((void **)&r->spots, &r->spot_room, sizeof(SpotRecord))) {
        r->out_of_memory = 1;
        return;
    }
    r->spots[r->spot_count++] = (SpotRecord){start, end, kind, quote};
}

static void hand_back(Reading *r, Py_ssize_t position) {
    if (r->handed_back_count == r->handed_back_room &&
        !grow((void **)&r->handed_back, &r->handed_back_room, sizeof(HandedBack))) {
        r->out_of_memory = 1;
        return;
    }
    r->handed_back[r->handed_back_count++] = (HandedBack){r->spot_count, position};
}

static Py_ssize_t find_byte(const Reading *r, unsigned char byte, Py_ssize_t from) {
    if (from >= r->length) return -1;
    const unsigned char *at = memchr(r->body + from, byte, (size_t)(r->length - from));
    return at ? at - r->body : -1;
}

/* After a comment that starts at `start` ("<!--"): tags._MARKUP's first alternative. */
static Py_ssize_t comment_end(const Reading *r, Py_ssize_t start) {
    Py_ssize_t at = start + 4;
    const unsigned char *b = r->body;
    if (at < r->length && b[at] == '>') return at + 1;  /* <!--> */
    if (at + 1 < r->length && b[at] == '-' && b[at + 1] == '>') return at + 2;  /* <!---> */
    for (at = find_byte(r, '-', at); at >= 0; at = find_byte(r, '-', at + 1)) {
        if (at + 2 < r->length && b[at + 1] == '-') {
            if (b[at + 2] == '>') return at + 3;
            if (b[at + 2] == '!' && at + 3 < r->length && b[at + 3] == '>') return at + 4;
        }
    }
    return r->length;
}

/* After the next ">" from `from`, or the end: the rest of a doctype or an end tag. */
static Py_ssize_t after_close(const Reading *r, Py_ssize_t from) {
    Py_ssize_t close = find_byte(r, '>', from);
    return close < 0 ? r->length : close + 1;
}

/* Is the name body[name:name+length] `wanted` (lowercase), in any case? */
static int name_is(const unsigned char *name, Py_ssize_t length, const char *wanted) {
    Py_ssize_t i = 0;
    for (; i < length && wanted[i]; i++)
        if (lower(name[i]) != (unsigned char)wanted[i]) return 0;
    return i == length && wanted[i] == 0;
}

/* The tags by their first letter: a page has thousands of tags, most of them of no interest. */
static unsigned char by_letter[26][TAG_COUNT + 1]; /* indexes into TAGS + 1, ending with 0 */

static void index_tags(void) {
    for (size_t i = 0; i < SPECIAL_COUNT; i++) SPECIAL_LENGTHS[i] = (Py_ssize_t)strlen(SPECIAL[i]);
    for (size_t i = 0; i < TAG_COUNT; i++) {
        unsigned char *slot = by_letter[TAGS[i].name[0] - 'a'];
        while (*slot) slot++;
        *slot = (unsigned char)(i + 1);
    }
}

static const TagInfo *tag_info(const unsigned char *name, Py_ssize_t length) {
    if (length > LONGEST_TAG) return NULL;
    for (const unsigned char *index = by_letter[lower(name[0]) - 'a']; *index; index++)
        if (name_is(name, length, TAGS[*index - 1].name)) return &TAGS[*index - 1];
    return NULL;
}

typedef struct { Py_ssize_t start, end; unsigned char quote; int present; } Value;

/* Read the attributes of a start tag from `position` (just after its name), as
 * tags._read_attributes does, keeping the first value of each name of `info` and noting a
 * srcset and the SPECIAL attributes; returns the position after the tag. */
static Py_ssize_t read_attributes(const Reading *r, Py_ssize_t position, const TagInfo *info, Value values[3],
                                  int *has_srcset, int *has_special) {
    const unsigned char *b = r->body;
    Py_ssize_t n = r->length;
    for (;;) {
        while (position < n && (is_space(b[position]) || b[position] == '/')) position++;
        if (position >= n || b[position] == '>') break;
        Py_ssize_t name_start = position++;  /* [^\s/>] */
        while (position < n && !is_space(b[position]) && b[position] != '/' && b[position] != '>' && b[position] != '=')
            position++;
        Py_ssize_t name_end = position;
        Value value = {name_end, name_end, QUOTE_NONE, 1};  /* a name alone */
        Py_ssize_t at = position;
        while (at < n && is_space(b[at])) at++;
        if (at < n && b[at] == '=') {  /* \s*=\s* and a value */
            at++;
            while (at < n && is_space(b[at])) at++;
            if (at < n && (b[at] == '"' || b[at] == '\'')) {
                Py_ssize_t close = find_byte(r, b[at], at + 1);
                value = (Value){at + 1, close < 0 ? n : close, b[at] == '"' ? QUOTE_DOUBLE : QUOTE_SINGLE, 1};
                position = close < 0 ? n : close + 1;
            } else {
                Py_ssize_t end = at;
                while (end < n && !is_space(b[end]) && b[end] != '>') end++;
                value = (Value){at, end, QUOTE_NONE, 1};
                position = end;
            }
        }
        if (info == NULL) continue;
        const unsigned char *name = b + name_start;
        Py_ssize_t name_length = name_end - name_start;
        for (int i = 0; i < 3; i++)
            if (info->attributes[i] && !values[i].present && name_is(name, name_length, info->attributes[i]))
                values[i] = value;
        if ((info->flags & SRCSET) && name_is(name, name_length, "srcset")) *has_srcset = 1;
        for (size_t i = 0; i < SPECIAL_COUNT && !*has_special; i++)
            if (name_is(name, name_length, SPECIAL[i])) *has_special = 1;
    }
    return position < n && b[position] == '>' ? position + 1 : position;
}

/* body[value] without the white space around it, as tags._attribute_bytes reads it. */
static void strip(const Reading *r, const Value *value, Py_ssize_t *start, Py_ssize_t *end) {
    *start = value->start;
    *end = value->end;
    while (*start < *end && is_space(r->body[*start])) (*start)++;
    while (*end > *start && is_space(r->body[*end - 1])) (*end)--;
}

/* A <link>'s kind by its rel (tags.link_kind): a requisite when one of its words, in any case,
 * is in REQUISITE_RELS. */
static unsigned char link_kind(const Reading *r, const Value *rel) {
    Py_ssize_t at, end;
    if (!rel->present) return PAGE;
    strip(r, rel, &at, &end);
    while (at < end) {
        while (at < end && is_space(r->body[at])) at++;
        Py_ssize_t word = at;
        while (at < end && !is_space(r->body[at])) at++;
        for (size_t i = 0; i < REL_COUNT; i++)
            if (at > word && name_is(r->body + word, at - word, REQUISITE_RELS[i])) return REQUISITE;
    }
    return PAGE;
}

/* Is an <input>'s type "image" (any case, white space around)? */
static int is_image(const Reading *r, const Value *type) {
    Py_ssize_t start, end;
    if (!type->present) return 0;
    strip(r, type, &start, &end);
    return name_is(r->body + start, end - start, "image");
}

/* Does body[start:end] hold one of the SPECIAL names and "=" (white space between), in any
 * case? tags.read_tag's test for a tag without links of its own (tags._SPECIAL_ATTRIBUTE), which
 * looks at the tag's bytes, values included. */
static int may_be_special(const Reading *r, Py_ssize_t start, Py_ssize_t end) {
    const unsigned char *b = r->body;
    for (Py_ssize_t at = start; at + 5 <= end; at++) {
        unsigned char c = b[at] | 0x20;  /* lowercase for letters; no other byte becomes s or d */
        if (c != 's' && c != 'd') continue;
        if (c == 's' ? !name_is(b + at, 5, "style") : !name_is(b + at, 5, "data-")) continue;
        for (size_t i = 0; i < SPECIAL_COUNT; i++) {  /* the whole name, then "=" */
            Py_ssize_t after = at + SPECIAL_LENGTHS[i];
            if (after > end || !name_is(b + at, SPECIAL_LENGTHS[i], SPECIAL[i])) continue;
            while (after < end && is_space(b[after])) after++;
            if (after < end && b[after] == '=') return 1;
        }
    }
    return 0;
}

/* Where the content of the raw-text element `tag` ends: at "</tag" followed by white space,
 * "/" or ">" in any case (tags.raw_text_end), else at the end of the document. */
static Py_ssize_t raw_text_end(const Reading *r, const char *tag, Py_ssize_t from) {
    const unsigned char *b = r->body;
    size_t tag_length = strlen(tag);
    for (Py_ssize_t at = find_byte(r, '<', from); at >= 0; at = find_byte(r, '<', at + 1)) {
        Py_ssize_t after = at + 2 + (Py_ssize_t)tag_length;
        if (after >= r->length) break;
        if (b[at + 1] != '/') continue;
        size_t i = 0;
        while (i < tag_length && lower(b[at + 2 + i]) == (unsigned char)tag[i]) i++;
        if (i == tag_length && (is_space(b[after]) || b[after] == '/' || b[after] == '>')) return at;
    }
    return r->length;
}

/* Read the start tag at `start` ("<" and a letter): its spots, or hands it back; returns the
 * position after it and the raw text it opens. */
static Py_ssize_t read_start_tag(Reading *r, Py_ssize_t start) {
    const unsigned char *b = r->body;
    Py_ssize_t name_end = start + 2;
    while (name_end < r->length && !is_space(b[name_end]) && b[name_end] != '/' && b[name_end] != '>') name_end++;
    const TagInfo *info = tag_info(b + start + 1, name_end - start - 1);
    Value values[3] = {{0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}};
    int has_srcset = 0, has_special = 0;
    Py_ssize_t end = read_attributes(r, name_end, info, values, &has_srcset, &has_special);
    /* as tags.read_tag: a tag that may hold links by its name is read attribute by attribute */
    int special = info != NULL && (info->flags & (URL | LINK_REL | IMAGE_INPUT)) ? has_special
                                                                                 : may_be_special(r, name_end, end);
    if (special || has_srcset || (info != NULL && (info->flags & HAND_BACK))) {
        hand_back(r, start);
    } else if (info != NULL && (info->flags & URL)) {
        for (int i = 0; i < 2; i++)
            if (values[i].present) add_spot(r, values[i].start, values[i].end, info->kinds[i], values[i].quote);
    } else if (info != NULL && (info->flags & LINK_REL) && values[0].present) {
        add_spot(r, values[0].start, values[0].end, link_kind(r, &values[2]), values[0].quote);
    } else if (info != NULL && (info->flags & IMAGE_INPUT) && values[0].present && is_image(r, &values[2])) {
        add_spot(r, values[0].start, values[0].end, REQUISITE, values[0].quote);
    }
    if (info != NULL && (info->flags & RAW_TEXT)) return raw_text_end(r, info->name, end);
    if (info != NULL && (info->flags & PLAINTEXT)) return r->length;
    return end;
}

/* Read the whole document, as tags.scan does from its start. */
static void read_document(Reading *r) {
    const unsigned char *b = r->body;
    Py_ssize_t n = r->length;
    Py_ssize_t position = 0;
    while (position < n && !r->out_of_memory) {
        Py_ssize_t at = find_byte(r, '<', position);
        if (at < 0 || at + 1 >= n) return;
        unsigned char next = b[at + 1];
        if (next == '!' && at + 3 < n && b[at + 2] == '-' && b[at + 3] == '-') {
            position = comment_end(r, at);
        } else if (next == '!' || next == '?') {
            position = after_close(r, at + 2);
        } else if (next == '/' && at + 2 < n && is_letter(b[at + 2])) {
            position = after_close(r, at + 3);
        } else if (is_letter(next)) {
            position = read_start_tag(r, at);
        } else {
            position = at + 1;  /* a "<" that starts no markup: text */
        }
    }
}

/* -- Python ---------------------------------------------------------------------------------- */

/* Documents from this size on are read without the GIL (a 64 KB page takes about 0.1 ms);
 * below it, handing the GIL over and waiting to take it back costs about what the reading does.
 * Measured on whole crawls, either way: the same within the noise. */
#define RELEASE_GIL_FROM 65536

static PyObject *spot_type, *kinds[2], *attribute_context, *quotes[3];

static PyObject *skim_setup(PyObject *module, PyObject *args) {
    PyObject *spot, *page, *requisite, *attribute, *double_quote, *single_quote, *no_quote;
    if (!PyArg_ParseTuple(args, "O!OOOSSS", &PyType_Type, &spot, &page, &requisite, &attribute, &double_quote,
                          &single_quote, &no_quote))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)spot, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "Spot must be a tuple type");
        return NULL;
    }
    PyObject *kept[] = {spot, page, requisite, attribute, double_quote, single_quote, no_quote};
    PyObject **slots[] = {&spot_type, &kinds[PAGE], &kinds[REQUISITE], &attribute_context,
                          &quotes[QUOTE_DOUBLE], &quotes[QUOTE_SINGLE], &quotes[QUOTE_NONE]};
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        Py_INCREF(kept[i]);
        Py_XSETREF(*slots[i], kept[i]);
    }
    Py_RETURN_NONE;
}

static PyObject *make_spot(const SpotRecord *record) {
    PyObject *spot = ((PyTypeObject *)spot_type)->tp_alloc((PyTypeObject *)spot_type, 5);  /* tuple.__new__ */
    if (spot == NULL) return NULL;
    PyObject *start = PyLong_FromSsize_t(record->start), *end = PyLong_FromSsize_t(record->end);
    if (start == NULL || end == NULL) {
        Py_XDECREF(start);
        Py_XDECREF(end);
        Py_DECREF(spot);
        return NULL;
    }
    PyTuple_SET_ITEM(spot, 0, start);
    PyTuple_SET_ITEM(spot, 1, end);
    PyTuple_SET_ITEM(spot, 2, Py_NewRef(kinds[record->kind]));
    PyTuple_SET_ITEM(spot, 3, Py_NewRef(attribute_context));
    PyTuple_SET_ITEM(spot, 4, Py_NewRef(quotes[record->quote]));
    return spot;
}

static PyObject *result_of(const Reading *r) {
    PyObject *spots = PyList_New(r->spot_count);
    PyObject *handed_back = PyList_New(r->handed_back_count);
    if (spots == NULL || handed_back == NULL) goto failed;
    for (Py_ssize_t i = 0; i < r->spot_count; i++) {
        PyObject *spot = make_spot(&r->spots[i]);
        if (spot == NULL) goto failed;
        PyList_SET_ITEM(spots, i, spot);
    }
    for (Py_ssize_t i = 0; i < r->handed_back_count; i++) {
        PyObject *pair = Py_BuildValue("(nn)", r->handed_back[i].before_spot, r->handed_back[i].position);
        if (pair == NULL) goto failed;
        PyList_SET_ITEM(handed_back, i, pair);
    }
    return Py_BuildValue("(NN)", spots, handed_back);
failed:
    Py_XDECREF(spots);
    Py_XDECREF(handed_back);
    return NULL;
}

static PyObject *skim_read(PyObject *module, PyObject *body) {
    if (!PyBytes_Check(body)) {
        PyErr_SetString(PyExc_TypeError, "read() takes bytes");
        return NULL;
    }
    if (spot_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup() first");
        return NULL;
    }
    Reading r = {(const unsigned char *)PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body), NULL, 0, 0, NULL, 0, 0, 0};
    if (r.length < RELEASE_GIL_FROM) {
        read_document(&r);
    } else {
        Py_BEGIN_ALLOW_THREADS
        read_document(&r);
        Py_END_ALLOW_THREADS
    }
    PyObject *result = r.out_of_memory ? PyErr_NoMemory() : result_of(&r);
    PyMem_RawFree(r.spots);
    PyMem_RawFree(r.handed_back);
    return result;
}


/* -- plain relative links ---------------------------------------------------------------------
 *
 * What links.link_target makes of a link as written, for the links most pages are made of: a
 * relative path ("../std/index.html", "x.html#frag", "/static/a.css?v=2") of characters that
 * need no decoding, escaping or cleaning, against a canonical base. The result is urljoin's
 * (Python 3's, with its quirks: empty segments dropped from a relative merge, ".." stopped at
 * the root), which canonicalize leaves as it is for such characters. Anything else -- a scheme,
 * "//", "?" or "#" first, "%", "&", ";", "\", white space, other bytes -- is left to Python.
 * tests/test_links.py compares the two on random links and bases.
 */

static unsigned char plain[256]; /* the bytes of a plain link: set by index_plain_bytes */

static const char PLAIN_BYTES[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$'()*+,=:@/?#";

static void index_plain_bytes(void) {
    for (const char *c = PLAIN_BYTES; *c; c++) plain[(unsigned char)*c] = 1;
}

typedef struct { const char *start; Py_ssize_t length; } Segment;

/* Split text[0:length] at "/" into segments (appended at segments[*count]). */
static int split_path(const char *text, Py_ssize_t length, Segment *segments, Py_ssize_t *count,
                      Py_ssize_t room) {
    Py_ssize_t from = 0;
    for (Py_ssize_t i = 0; i <= length; i++) {
        if (i < length && text[i] != '/') continue;
        if (*count == room) return 0;
        segments[(*count)++] = (Segment){text + from, i - from};
        from = i + 1;
    }
    return 1;
}

static int is_dots(const Segment *segment, Py_ssize_t dots) {
    return segment->length == dots && memcmp(segment->start, "..", (size_t)dots) == 0;
}

/* resolve(origin, folder, written) -> (canonical URL, fragment), or None: not a plain link. */
static PyObject *skim_resolve(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1]) || !PyBytes_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "resolve(origin: str, folder: str, written: bytes)");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(args[0]) || !PyUnicode_IS_ASCII(args[1])) Py_RETURN_NONE;
    const char *origin = (const char *)PyUnicode_DATA(args[0]), *folder = (const char *)PyUnicode_DATA(args[1]);
    Py_ssize_t origin_length = PyUnicode_GET_LENGTH(args[0]), folder_length = PyUnicode_GET_LENGTH(args[1]);
    const char *written = PyBytes_AS_STRING(args[2]);
    Py_ssize_t length = PyBytes_GET_SIZE(args[2]);
    if (length == 0 || written[0] == '#' || written[0] == '?' || folder_length == 0 || folder[0] != '/' ||
        folder[folder_length - 1] != '/')
        Py_RETURN_NONE;
    Py_ssize_t hash = length, query = -1, first_slash = -1;
    for (Py_ssize_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)written[i];
        if (!plain[c]) Py_RETURN_NONE;
        if (c == '#' && hash == length) hash = i;
        if (hash == length) {
            if (c == '?' && query < 0) query = i;
            if (query < 0) {
                if (c == '/' && first_slash < 0) first_slash = i;
                if (c == ':' && first_slash < 0) Py_RETURN_NONE;  /* a scheme, or what looks like one */
                if (c == '/' && i > 0 && written[i - 1] == '/') Py_RETURN_NONE;
            }
        }
    }
    Py_ssize_t path_length = query >= 0 ? query : hash;

    /* the segments to resolve: urljoin's, from the base's folder unless the path is absolute */
    Py_ssize_t room = folder_length + path_length + 2, count = 0;
    Segment *segments = PyMem_Malloc((size_t)room * sizeof(Segment) * 2);
    if (segments == NULL) return PyErr_NoMemory();
    Segment *resolved = segments + room;
    int absolute = written[0] == '/';
    if (!absolute) split_path(folder, folder_length, segments, &count, room);
    split_path(written, path_length, segments, &count, room);
    if (!absolute) {  /* segments[1:-1] = filter(None, segments[1:-1]) */
        Py_ssize_t kept = 1;
        for (Py_ssize_t i = 1; i < count - 1; i++)
            if (segments[i].length) segments[kept++] = segments[i];
        segments[kept++] = segments[count - 1];
        count = kept;
    }
    Py_ssize_t depth = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (is_dots(&segments[i], 2)) {
            if (depth) depth--;
        } else if (!is_dots(&segments[i], 1)) {
            resolved[depth++] = segments[i];
        }
    }
    if (is_dots(&segments[count - 1], 1) || is_dots(&segments[count - 1], 2)) resolved[depth++] = (Segment){"", 0};

    /* origin + "/".join(resolved) (a "/" first) + "?" query */
    Py_ssize_t query_length = query >= 0 ? hash - query - 1 : 0;
    Py_ssize_t size = origin_length + 1 + query_length + 1;
    for (Py_ssize_t i = 0; i < depth; i++) size += resolved[i].length + 1;
    char *out = PyMem_Malloc((size_t)size);
    if (out == NULL) {
        PyMem_Free(segments);
        return PyErr_NoMemory();
    }
    char *at = out;
    memcpy(at, origin, (size_t)origin_length);
    at += origin_length;
    char *path = at;
    for (Py_ssize_t i = 0; i < depth; i++) {
        if (i) *at++ = '/';
        memcpy(at, resolved[i].start, (size_t)resolved[i].length);
        at += resolved[i].length;
    }
    if (at == path || *path != '/') {  /* urlunparse puts a "/" before a path that lacks one */
        memmove(path + 1, path, (size_t)(at - path));
        *path = '/';
        at++;
    }
    if (query_length) {
        *at++ = '?';
        memcpy(at, written + query + 1, (size_t)query_length);
        at += query_length;
    }
    PyMem_Free(segments);
    PyObject *url = PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, out, at - out);
    PyMem_Free(out);
    PyObject *fragment = PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, hash < length ? written + hash + 1 : "",
                                                   hash < length ? length - hash - 1 : 0);
    PyObject *pair = url != NULL && fragment != NULL ? PyTuple_Pack(2, url, fragment) : NULL;
    Py_XDECREF(url);
    Py_XDECREF(fragment);
    return pair;
}

/* The tables above, for the test that compares them with tags.py's. */
static PyObject *skim_tables(PyObject *module, PyObject *unused) {
    PyObject *url_attributes = PyDict_New(), *raw_text = PyList_New(0), *rels = PyList_New(0);
    PyObject *special = PyList_New(0), *result = NULL;
    if (url_attributes == NULL || raw_text == NULL || rels == NULL || special == NULL) goto done;
    for (size_t i = 0; i < SPECIAL_COUNT; i++) {
        PyObject *name = PyBytes_FromString(SPECIAL[i]);
        if (name == NULL || PyList_Append(special, name) < 0) { Py_XDECREF(name); goto done; }
        Py_DECREF(name);
    }
    for (size_t i = 0; i < TAG_COUNT; i++) {
        const TagInfo *tag = &TAGS[i];
        if (tag->flags & RAW_TEXT) {
            PyObject *name = PyBytes_FromString(tag->name);
            if (name == NULL || PyList_Append(raw_text, name) < 0) { Py_XDECREF(name); goto done; }
            Py_DECREF(name);
        }
        if (!(tag->flags & URL)) continue;
        PyObject *pairs = tag->attributes[1]
            ? Py_BuildValue("((yi)(yi))", tag->attributes[0], tag->kinds[0], tag->attributes[1], tag->kinds[1])
            : Py_BuildValue("((yi))", tag->attributes[0], tag->kinds[0]);
        if (pairs == NULL) goto done;
        int failed = PyDict_SetItemString(url_attributes, tag->name, pairs) < 0;
        Py_DECREF(pairs);
        if (failed) goto done;
    }
    for (size_t i = 0; i < REL_COUNT; i++) {
        PyObject *rel = PyBytes_FromString(REQUISITE_RELS[i]);
        if (rel == NULL || PyList_Append(rels, rel) < 0) { Py_XDECREF(rel); goto done; }
        Py_DECREF(rel);
    }
    result = Py_BuildValue("{sOsOsOsO}", "url_attributes", url_attributes, "raw_text", raw_text, "requisite_rels",
                           rels, "special", special);
done:
    Py_XDECREF(url_attributes);
    Py_XDECREF(raw_text);
    Py_XDECREF(rels);
    Py_XDECREF(special);
    return result;
}

static PyMethodDef methods[] = {
    {"tables", skim_tables, METH_NOARGS,
     "tables() -> {'url_attributes': {tag: ((attribute, 0 page | 1 requisite), ...)}, 'raw_text': [...], "
     "'requisite_rels': [...]}"},
    {"setup", skim_setup, METH_VARARGS,
     "setup(Spot, PAGE, REQUISITE, Context.ATTRIBUTE, b'\"', b\"'\", b'') -- what read() makes its spots of."},
    {"resolve", (PyCFunction)(void (*)(void))skim_resolve, METH_FASTCALL,
     "resolve(origin, folder, written) -> (canonical URL, fragment) of a plain relative link against a "
     "canonical base (origin 'https://host', folder '/a/b/'), or None: left to links.link_target."},
    {"read", skim_read, METH_O,
     "read(body) -> (spots, handed_back): the spots of the tags read here, and (number of spots before it, "
     "position) of each tag left to tags.read_construct."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_skim", "HTML link spots, read in C (see skim.py).", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__skim(void) {
    index_tags();
    index_plain_bytes();
    PyObject *created = PyModule_Create(&module);
    if (created == NULL) return NULL;
    if (PyModule_AddObject(created, "PLAIN_BYTES", PyBytes_FromString(PLAIN_BYTES)) < 0 ||
        PyModule_AddStringConstant(created, "SOURCE_SHA256", SOURCE_SHA256) < 0) {
        Py_DECREF(created);
        return NULL;
    }
    return created;
}
