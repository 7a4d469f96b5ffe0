/* rewind.accelerator._cbor: the recorder's JSON event text -> CBOR bytes, in C.
 *
 * `trace.bin` holds each event as one CBOR item with the shape of its JSON
 * (writer/binary_writer.py).  The pure-Python path parses every line with json.loads and
 * encodes it with cbor2.dumps; this module transcodes the text directly and gives the same
 * bytes: definite-length maps, arrays and text strings, integers in their shortest form,
 * true/false/null as simple values (what cbor2.dumps writes for what json.loads returns).
 *
 * It handles the JSON the recorder writes: objects, arrays, strings, integers within 64 bits,
 * true, false and null.  Anything else (a fraction or exponent, an integer beyond 64 bits, an
 * escaped surrogate, text that is not valid UTF-8, an object with a key given twice) raises
 * ValueError, and the caller converts that piece in Python.  Only documented CPython API is used.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <stdint.h>

/* The CRC-32 of this file as built (setup.py): SOURCE_CRC, checked by accelerator._load. */
#ifndef REWIND_SOURCE_CRC
#define REWIND_SOURCE_CRC 0UL
#endif

typedef struct {
    unsigned char *data;
    size_t size, capacity;
} Buffer;

typedef struct {
    const unsigned char *p, *end;
    int failed;  /* 1: not a JSON shape this module handles */
} Parser;

static int
reserve(Buffer *b, size_t more)
{
    if (b->size + more <= b->capacity)
        return 0;
    size_t capacity = b->capacity ? b->capacity : 256;
    while (capacity < b->size + more)
        capacity *= 2;
    unsigned char *data = PyMem_Realloc(b->data, capacity);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->capacity = capacity;
    return 0;
}

static size_t
head_size(uint64_t value)
{
    return value < 24 ? 1 : value <= 0xFF ? 2 : value <= 0xFFFF ? 3 : value <= 0xFFFFFFFFu ? 5 : 9;
}

/* The head of a CBOR item of major type `major` and argument `value`, written at `out`. */
static void
put_head(unsigned char *out, int major, uint64_t value)
{
    unsigned char m = (unsigned char)(major << 5);
    size_t n = head_size(value);
    if (n == 1) {
        out[0] = m | (unsigned char)value;
        return;
    }
    out[0] = m | (n == 2 ? 24 : n == 3 ? 25 : n == 5 ? 26 : 27);
    for (size_t i = 1; i < n; i++)
        out[i] = (unsigned char)(value >> (8 * (n - 1 - i)));
}

static inline int
write_head(Buffer *b, int major, uint64_t value)
{
    if (reserve(b, 9) < 0)
        return -1;
    put_head(b->data + b->size, major, value);
    b->size += head_size(value);
    return 0;
}

static void
skip_space(Parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}

static int
hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    *out = v;
    return 0;
}

/* A JSON string at ps->p (the opening quote) as a CBOR text string. */
static int
parse_string(Parser *ps, Buffer *b)
{
    const unsigned char *p = ps->p + 1, *end = ps->end;
    /* Most strings have nothing escaped: copy them in one go. */
    const unsigned char *plain = p;
    while (plain < end && *plain != '"' && *plain != '\\' && *plain >= 0x20)
        plain++;
    if (plain < end && *plain == '"') {
        size_t n = (size_t)(plain - p);
        if (write_head(b, 3, n) < 0 || reserve(b, n) < 0)
            return -1;
        memcpy(b->data + b->size, p, n);
        b->size += n;
        ps->p = plain + 1;
        return 0;
    }
    /* First pass: the decoded length, and where the string ends. */
    size_t length = 0;
    const unsigned char *q = p;
    while (q < end && *q != '"') {
        if (*q == '\\') {
            if (q + 1 >= end) { ps->failed = 1; return 0; }
            if (q[1] == 'u') {
                unsigned cp;
                if (q + 6 > end || hex4(q + 2, &cp) < 0 || (cp >= 0xD800 && cp <= 0xDFFF)) {
                    ps->failed = 1;  /* surrogates: left to the Python path */
                    return 0;
                }
                length += cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
                q += 6;
            }
            else {
                length += 1;
                q += 2;
            }
        }
        else if (*q < 0x20) {  /* a raw control character is not JSON */
            ps->failed = 1;
            return 0;
        }
        else {
            length += 1;
            q += 1;
        }
    }
    if (q >= end) {
        ps->failed = 1;
        return 0;
    }
    if (write_head(b, 3, length) < 0 || reserve(b, length) < 0)
        return -1;
    unsigned char *out = b->data + b->size;
    while (p < q) {
        if (*p != '\\') {
            *out++ = *p++;
            continue;
        }
        unsigned char c = p[1];
        if (c == 'u') {
            unsigned cp;
            hex4(p + 2, &cp);
            if (cp < 0x80)
                *out++ = (unsigned char)cp;
            else if (cp < 0x800) {
                *out++ = (unsigned char)(0xC0 | (cp >> 6));
                *out++ = (unsigned char)(0x80 | (cp & 0x3F));
            }
            else {
                *out++ = (unsigned char)(0xE0 | (cp >> 12));
                *out++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                *out++ = (unsigned char)(0x80 | (cp & 0x3F));
            }
            p += 6;
            continue;
        }
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '/': *out++ = '/'; break;
        case 'b': *out++ = '\b'; break;
        case 'f': *out++ = '\f'; break;
        case 'n': *out++ = '\n'; break;
        case 'r': *out++ = '\r'; break;
        case 't': *out++ = '\t'; break;
        default:
            ps->failed = 1;
            return 0;
        }
        p += 2;
    }
    b->size += length;
    ps->p = q + 1;
    return 0;
}

/* Where an object's keys are in the output, to find a key given twice: json.loads keeps
 * only the last value of such a key, so an object with one is left to the Python path. The
 * recorder never writes one; the first few keys are tracked without allocating. */
typedef struct {
    size_t at, len;
} KeySpan;

typedef struct {
    KeySpan inline_keys[8];
    KeySpan *keys;
    size_t count, capacity;
} KeySpans;

/* 1 when the key just written at b[at:] was already in this object, 0 when new, -1 error. */
static int
seen_key(KeySpans *seen, const Buffer *b, size_t at)
{
    size_t len = b->size - at;
    for (size_t i = 0; i < seen->count; i++) {
        if (seen->keys[i].len == len && memcmp(b->data + seen->keys[i].at, b->data + at, len) == 0)
            return 1;
    }
    if (seen->count == seen->capacity) {
        size_t capacity = seen->capacity * 2;
        KeySpan *keys = seen->keys == seen->inline_keys ? PyMem_Malloc(capacity * sizeof(KeySpan))
                                                        : PyMem_Realloc(seen->keys, capacity * sizeof(KeySpan));
        if (keys == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        if (seen->keys == seen->inline_keys)
            memcpy(keys, seen->inline_keys, sizeof(seen->inline_keys));
        seen->keys = keys;
        seen->capacity = capacity;
    }
    seen->keys[seen->count].at = at;
    seen->keys[seen->count].len = len;
    seen->count++;
    return 0;
}

static int parse_value(Parser *ps, Buffer *b, int depth);

/* The items of an object or array, after its 1-byte head: 0 (or ps->failed), -1 error. */
static int
parse_items(Parser *ps, Buffer *b, int depth, int is_object, uint64_t *count)
{
    unsigned char close = is_object ? '}' : ']';
    KeySpans seen;  /* not zeroed: only its first `count` spans are read */
    seen.count = 0;
    seen.capacity = sizeof(seen.inline_keys) / sizeof(seen.inline_keys[0]);
    seen.keys = seen.inline_keys;
    int rc = 0;
    for (;;) {
        skip_space(ps);
        if (is_object) {
            if (ps->p >= ps->end || *ps->p != '"') { ps->failed = 1; break; }
            size_t key_at = b->size;
            if ((rc = parse_string(ps, b)) < 0 || ps->failed)
                break;
            int again = seen_key(&seen, b, key_at);
            if (again != 0) {
                if (again > 0)
                    ps->failed = 1;  /* a key given twice */
                rc = again < 0 ? -1 : 0;
                break;
            }
            skip_space(ps);
            if (ps->p >= ps->end || *ps->p != ':') { ps->failed = 1; break; }
            ps->p++;
        }
        if ((rc = parse_value(ps, b, depth + 1)) < 0 || ps->failed)
            break;
        *count += 1;
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close)
            ps->p++;
        else
            ps->failed = 1;
        break;
    }
    if (seen.keys != seen.inline_keys)
        PyMem_Free(seen.keys);
    return rc;
}

/* An object or array: its items are written after a 1-byte head, which is widened (the
 * items moved) when the count needs a longer head. */
static int
parse_container(Parser *ps, Buffer *b, int depth, int is_object)
{
    unsigned char close = is_object ? '}' : ']';
    if (reserve(b, 1) < 0)
        return -1;
    size_t head_at = b->size;
    b->size += 1;
    uint64_t count = 0;
    ps->p++;
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == close)
        ps->p++;
    else if (parse_items(ps, b, depth, is_object, &count) < 0 || ps->failed)
        return ps->failed ? 0 : -1;
    size_t n = head_size(count);
    if (n > 1) {
        if (reserve(b, n - 1) < 0)
            return -1;
        memmove(b->data + head_at + n, b->data + head_at + 1, b->size - head_at - 1);
        b->size += n - 1;
    }
    put_head(b->data + head_at, is_object ? 5 : 4, count);
    return 0;
}

static int
parse_number(Parser *ps, Buffer *b)
{
    const unsigned char *p = ps->p;
    int negative = 0;
    if (p < ps->end && *p == '-') {
        negative = 1;
        p++;
    }
    if (p >= ps->end || *p < '0' || *p > '9' || (*p == '0' && p + 1 < ps->end && p[1] >= '0' && p[1] <= '9')) {
        ps->failed = 1;
        return 0;
    }
    uint64_t magnitude = 0;
    while (p < ps->end && *p >= '0' && *p <= '9') {
        unsigned digit = *p - '0';
        if (magnitude > (UINT64_MAX - digit) / 10) {  /* beyond 64 bits: cbor2 writes a bignum */
            ps->failed = 1;
            return 0;
        }
        magnitude = magnitude * 10 + digit;
        p++;
    }
    if (p < ps->end && (*p == '.' || *p == 'e' || *p == 'E')) {  /* a float: left to Python */
        ps->failed = 1;
        return 0;
    }
    ps->p = p;
    if (!negative)
        return write_head(b, 0, magnitude);
    if (magnitude == 0)  /* -0 is the integer 0 */
        return write_head(b, 0, 0);
    return write_head(b, 1, magnitude - 1);
}

static int
parse_literal(Parser *ps, Buffer *b, const char *word, unsigned char code)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) {
        ps->failed = 1;
        return 0;
    }
    ps->p += n;
    if (reserve(b, 1) < 0)
        return -1;
    b->data[b->size++] = code;
    return 0;
}

/* -- the shapes of nearly every event -------------------------------------------------------
 * A Step, a Value and most values the recorder writes (Int, String, Float, Raw, Bool, None,
 * Struct, Sequence, Tuple) have a fixed shape: known keys in a known order, with a number, a
 * string or a value between them.  For those, the keys' CBOR is copied from a table instead
 * of parsed, which is most of a Step's or an Int Value's work.  The bytes are the ones the general parser writes for the same text (the map
 * heads hold the fixed counts); any other text, even the same event with a space or an extra
 * key, misses the shape and goes to the general parser, which decides. */
enum { HOLE_NUMBER, HOLE_STRING, HOLE_VALUE, HOLE_END };

typedef struct {
    const char *json;     /* the literal text up to the next hole */
    size_t json_len;
    const char *cbor;     /* the CBOR the general parser writes for it */
    size_t cbor_len;
    int hole;             /* what follows it */
} Piece;

#define PIECE(json, cbor, hole) {json, sizeof(json) - 1, cbor, sizeof(cbor) - 1, hole}
/* How a value's shape ends: ,"type_id":N} */
#define TYPE_ID_AND_END PIECE(",\"type_id\":", "\x67" "type_id", HOLE_NUMBER), PIECE("}", "", HOLE_END)

/* {"Step":{"path_id":N,"line":N}} */
static const Piece step_shape[] = {
    PIECE("{\"Step\":{\"path_id\":", "\xA1\x64" "Step\xA2\x67" "path_id", HOLE_NUMBER),
    PIECE(",\"line\":", "\x64" "line", HOLE_NUMBER),
    PIECE("}}", "", HOLE_END),
};
/* {"Value":{"variable_id":N,"value":V}} */
static const Piece value_shape[] = {
    PIECE("{\"Value\":{\"variable_id\":", "\xA1\x65" "Value\xA2\x6B" "variable_id", HOLE_NUMBER),
    PIECE(",\"value\":", "\x65" "value", HOLE_VALUE),
    PIECE("}}", "", HOLE_END),
};
/* {"kind":"Int","i":N,"type_id":N} */
static const Piece int_shape[] = {
    PIECE("{\"kind\":\"Int\",\"i\":", "\xA3\x64" "kind\x63" "Int\x61" "i", HOLE_NUMBER),
    TYPE_ID_AND_END,
};
/* {"kind":"String","text":S,"type_id":N} */
static const Piece string_shape[] = {
    PIECE("{\"kind\":\"String\",\"text\":", "\xA3\x64" "kind\x66" "String\x64" "text", HOLE_STRING),
    TYPE_ID_AND_END,
};
/* {"kind":"Float","f":S,"type_id":N} */
static const Piece float_shape[] = {
    PIECE("{\"kind\":\"Float\",\"f\":", "\xA3\x64" "kind\x65" "Float\x61" "f", HOLE_STRING),
    TYPE_ID_AND_END,
};

/* {"kind":"Raw","r":S,"type_id":N} */
static const Piece raw_shape[] = {
    PIECE("{\"kind\":\"Raw\",\"r\":", "\xA3\x64" "kind\x63" "Raw\x61" "r", HOLE_STRING),
    TYPE_ID_AND_END,
};
/* {"kind":"Bool","b":V,"type_id":N} (V: true or false, as the general parser sees it) */
static const Piece bool_shape[] = {
    PIECE("{\"kind\":\"Bool\",\"b\":", "\xA3\x64" "kind\x64" "Bool\x61" "b", HOLE_VALUE),
    TYPE_ID_AND_END,
};
/* {"kind":"None","type_id":N} */
static const Piece none_shape[] = {
    PIECE("{\"kind\":\"None\",\"type_id\":", "\xA2\x64" "kind\x64" "None\x67" "type_id", HOLE_NUMBER),
    PIECE("}", "", HOLE_END),
};
/* {"kind":"Struct","field_values":V,"type_id":N} (V: the array, parsed as any value) */
static const Piece struct_shape[] = {
    PIECE("{\"kind\":\"Struct\",\"field_values\":", "\xA3\x64" "kind\x66" "Struct\x6C" "field_values",
          HOLE_VALUE),
    TYPE_ID_AND_END,
};
/* {"kind":"Sequence","elements":V,"is_slice":false,"type_id":N} */
static const Piece sequence_shape[] = {
    PIECE("{\"kind\":\"Sequence\",\"elements\":", "\xA4\x64" "kind\x68" "Sequence\x68" "elements", HOLE_VALUE),
    PIECE(",\"is_slice\":false,\"type_id\":", "\x68" "is_slice\xF4\x67" "type_id", HOLE_NUMBER),
    PIECE("}", "", HOLE_END),
};
/* {"kind":"Tuple","elements":V,"type_id":N} */
static const Piece tuple_shape[] = {
    PIECE("{\"kind\":\"Tuple\",\"elements\":", "\xA3\x64" "kind\x65" "Tuple\x68" "elements", HOLE_VALUE),
    TYPE_ID_AND_END,
};

/* The object at ps->p in `shape`: 1 written, 0 not that shape (nothing written or consumed),
 * -1 error. */
static int
parse_shape(Parser *ps, Buffer *b, int depth, const Piece *piece)
{
    const unsigned char *start = ps->p;
    size_t size = b->size;
    for (;; piece++) {
        if ((size_t)(ps->end - ps->p) < piece->json_len || memcmp(ps->p, piece->json, piece->json_len) != 0)
            break;
        ps->p += piece->json_len;
        if (reserve(b, piece->cbor_len) < 0)
            return -1;
        memcpy(b->data + b->size, piece->cbor, piece->cbor_len);
        b->size += piece->cbor_len;
        int rc = 0;
        switch (piece->hole) {
        case HOLE_END:
            return 1;
        case HOLE_NUMBER:
            rc = parse_number(ps, b);  /* it refuses anything but a number */
            break;
        case HOLE_STRING:
            if (ps->p < ps->end && *ps->p == '"')
                rc = parse_string(ps, b);
            else
                ps->failed = 1;
            break;
        default:
            rc = parse_value(ps, b, depth + 2);  /* the depth the general parser gives it */
        }
        if (rc < 0)
            return -1;
        if (ps->failed)
            break;
    }
    ps->p = start;
    b->size = size;
    ps->failed = 0;
    return 0;
}

/* The shape an object at ps->p may have, told by its first key's first letter. */
static const Piece *const *
shapes_for(const Parser *ps)
{
    static const Piece *const step[] = {step_shape, NULL};
    static const Piece *const value[] = {value_shape, NULL};
    static const Piece *const kinds[] = {int_shape, string_shape, struct_shape, sequence_shape, tuple_shape,
                                         float_shape, none_shape, bool_shape, raw_shape, NULL};
    if (ps->end - ps->p < 3 || ps->p[1] != '"')
        return NULL;
    switch (ps->p[2]) {
    case 'S': return step;
    case 'V': return value;
    case 'k': return kinds;
    default: return NULL;
    }
}

static int
parse_value(Parser *ps, Buffer *b, int depth)
{
    if (depth > 200) {
        ps->failed = 1;
        return 0;
    }
    skip_space(ps);
    if (ps->p >= ps->end) {
        ps->failed = 1;
        return 0;
    }
    switch (*ps->p) {
    case '{': {
        const Piece *const *shapes = shapes_for(ps);
        for (; shapes != NULL && *shapes != NULL; shapes++) {
            int rc = parse_shape(ps, b, depth, *shapes);
            if (rc != 0)
                return rc < 0 ? -1 : 0;
        }
        return parse_container(ps, b, depth, 1);
    }
    case '[': return parse_container(ps, b, depth, 0);
    case '"': return parse_string(ps, b);
    case 't': return parse_literal(ps, b, "true", 0xF5);
    case 'f': return parse_literal(ps, b, "false", 0xF4);
    case 'n': return parse_literal(ps, b, "null", 0xF6);
    default: return parse_number(ps, b);
    }
}

/* Recent long events, by their JSON text: a recording repeats the Value event of an unchanged
 * container at every step, and hashing and comparing its text costs a fraction of parsing
 * it again.  A direct-mapped table: an entry is replaced by the next event in its slot, and
 * when the table holds CACHE_MAX_BYTES the oldest slots are dropped (cache_store).  Only the
 * GIL-holding caller of events() touches it (nothing here runs Python code). */
#define CACHE_SLOTS 1024
#define CACHE_MIN_LINE 128              /* shorter events parse about as fast as they hash */
#define CACHE_MAX_LINE (256 * 1024)
/* JSON text plus CBOR held by the table at most: a recording's peak RSS must stay within
 * 50 MB of the program's (issue 9).  16 MB of text alone put pytest's binary recording at +57 MB;
 * 8 MB of both, +39 MB (markdown: +49 -> +29 MB). */
#define CACHE_MAX_BYTES (8 * 1024 * 1024)

typedef struct {
    uint64_t hash;
    size_t size;          /* of the text */
    size_t held;          /* text + CBOR bytes, counted in cache_bytes */
    unsigned char *json;  /* a copy of the event's text (PyMem) */
    PyObject *cbor;       /* its CBOR item (bytes) */
} CacheEntry;

static CacheEntry cache[CACHE_SLOTS];
static size_t cache_bytes;
static int evict_at;  /* the next slot to drop when the table is full */

/* Four independent lanes of 8 bytes: the multiplications overlap (about 4x the speed of
 * one lane on the long events this is for). */
static uint64_t
text_hash(const unsigned char *p, size_t n)
{
    const uint64_t k = 0xFF51AFD7ED558CCDULL;
    uint64_t h[4] = {0x9E3779B97F4A7C15ULL ^ n, 0xC2B2AE3D27D4EB4FULL, 0x165667B19E3779F9ULL, 0x27D4EB2F165667C5ULL};
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int lane = 0; lane < 4; lane++) {
            uint64_t w;
            memcpy(&w, p + i + 8 * lane, 8);
            h[lane] = (h[lane] ^ w) * k;
            h[lane] ^= h[lane] >> 32;
        }
    }
    uint64_t out = h[0] ^ (h[1] * 31) ^ (h[2] * 131) ^ (h[3] * 1031);
    for (; i < n; i++)
        out = (out ^ p[i]) * 0x100000001B3ULL;
    return out ^ (out >> 29);
}

static void
cache_drop(CacheEntry *e)
{
    if (e->json != NULL) {
        PyMem_Free(e->json);
        cache_bytes -= e->held;
    }
    Py_CLEAR(e->cbor);
    e->json = NULL;
    e->size = 0;
    e->held = 0;
}

/* The cached CBOR item (borrowed) of the event text [p, p + n), or NULL. */
static PyObject *
cache_find(const unsigned char *p, size_t n, uint64_t hash)
{
    CacheEntry *e = &cache[hash % CACHE_SLOTS];
    if (e->cbor != NULL && e->hash == hash && e->size == n && memcmp(e->json, p, n) == 0)
        return e->cbor;
    return NULL;
}

/* Remember cbor (a bytes object) as the item of [p, p + n); a failure to copy is ignored. */
static void
cache_store(const unsigned char *p, size_t n, uint64_t hash, PyObject *cbor)
{
    CacheEntry *e = &cache[hash % CACHE_SLOTS];
    cache_drop(e);
    size_t held = n + (size_t)PyBytes_GET_SIZE(cbor);
    if (held > CACHE_MAX_BYTES / 4)
        return;
    /* Full: make room by dropping entries in slot order from where the last drop stopped
     * (about first in, first out), so old events cannot keep new ones out for good. */
    for (int tries = 0; cache_bytes + held > CACHE_MAX_BYTES && tries < CACHE_SLOTS; tries++) {
        cache_drop(&cache[evict_at]);
        evict_at = (evict_at + 1) % CACHE_SLOTS;
    }
    if (cache_bytes + held > CACHE_MAX_BYTES)
        return;
    unsigned char *copy = PyMem_Malloc(n);
    if (copy == NULL)
        return;
    memcpy(copy, p, n);
    e->hash = hash;
    e->size = n;
    e->json = copy;
    Py_INCREF(cbor);
    e->cbor = cbor;
    e->held = held;
    cache_bytes += held;
}

static PyObject *
cbor_forget(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    for (int i = 0; i < CACHE_SLOTS; i++)
        cache_drop(&cache[i]);
    Py_RETURN_NONE;
}

/* The end of the event that starts at p, when the text has the recorder's layout (one event
 * per line, each line but the last ending with ","): the "," before the next newline, or
 * the end of the text.  A newline inside an event cannot happen (JSON escapes it), and a text
 * of any other layout only misses the cache: the parse decides. */
static const unsigned char *
line_end(const unsigned char *p, const unsigned char *end)
{
    const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL)
        return end;
    return nl > p && nl[-1] == ',' ? nl - 1 : NULL;
}

/* The CBOR item of each event in `text` (events separated by commas, as the recorder writes
 * them: each after ",\n"): a list of bytes, one per event, or (`joined`) one bytes object of
 * all of them, which spares a bytes object per event and the join. */
static PyObject *
transcode(PyObject *text, int joined)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "events() and events_joined() take a str");
        return NULL;
    }
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &size);
    if (utf8 == NULL) {  /* a lone surrogate: the Python path replaces it */
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, "text with a lone surrogate");
        return NULL;
    }
    Parser ps = {(const unsigned char *)utf8, (const unsigned char *)utf8 + size, 0};
    Buffer b = {NULL, 0, 0};
    PyObject *out = joined ? NULL : PyList_New(0);
    if (!joined && out == NULL)
        return NULL;
    skip_space(&ps);
    if (ps.p < ps.end && *ps.p == ',')
        ps.p++;
    for (;;) {
        skip_space(&ps);
        if (ps.p >= ps.end)
            break;
        const unsigned char *start = ps.p, *stop = line_end(ps.p, ps.end);
        size_t n = stop == NULL ? 0 : (size_t)(stop - start);
        int cacheable = n >= CACHE_MIN_LINE && n <= CACHE_MAX_LINE;
        uint64_t hash = cacheable ? text_hash(start, n) : 0;
        PyObject *known = cacheable ? cache_find(start, n, hash) : NULL;
        if (known != NULL) {
            if (joined) {
                Py_ssize_t k = PyBytes_GET_SIZE(known);
                if (reserve(&b, (size_t)k) < 0)
                    goto error;
                memcpy(b.data + b.size, PyBytes_AS_STRING(known), (size_t)k);
                b.size += (size_t)k;
            }
            else if (PyList_Append(out, known) < 0)
                goto error;
            ps.p = stop;
        }
        else {
            size_t item_at = joined ? b.size : 0;  /* joined: the items so far stay in b */
            b.size = item_at;
            if (parse_value(&ps, &b, 0) < 0)
                goto error;
            if (ps.failed) {
                PyErr_SetString(PyExc_ValueError, "not JSON that the C transcoder handles");
                goto error;
            }
            int whole_line = cacheable && ps.p == stop;  /* the parse took exactly the line: one event */
            if (!joined || whole_line) {
                PyObject *item = PyBytes_FromStringAndSize((const char *)b.data + item_at,
                                                           (Py_ssize_t)(b.size - item_at));
                if (item == NULL || (!joined && PyList_Append(out, item) < 0)) {
                    Py_XDECREF(item);
                    goto error;
                }
                if (whole_line)
                    cache_store(start, n, hash, item);
                Py_DECREF(item);
            }
        }
        skip_space(&ps);
        if (ps.p < ps.end) {
            if (*ps.p != ',') {
                PyErr_SetString(PyExc_ValueError, "events must be separated by commas");
                goto error;
            }
            ps.p++;
        }
    }
    if (joined)
        out = PyBytes_FromStringAndSize((const char *)b.data, (Py_ssize_t)b.size);
    PyMem_Free(b.data);
    return out;
error:
    PyMem_Free(b.data);
    Py_XDECREF(out);
    return NULL;
}

/* events(text) -> list[bytes] */
static PyObject *
cbor_events(PyObject *module, PyObject *text)
{
    (void)module;
    return transcode(text, 0);
}

/* events_joined(text) -> bytes: b"".join(events(text)) */
static PyObject *
cbor_events_joined(PyObject *module, PyObject *text)
{
    (void)module;
    return transcode(text, 1);
}

static PyMethodDef cbor_methods[] = {
    {"events", cbor_events, METH_O,
     "events(text) -> list[bytes]: the CBOR item of each comma-separated JSON event in text."},
    {"events_joined", cbor_events_joined, METH_O,
     "events_joined(text) -> bytes: b''.join(events(text)), made without a bytes object per event."},
    {"forget", cbor_forget, METH_NOARGS,
     "forget(): drop the cache of recent long events (their texts and CBOR items)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef cbor_module = {
    PyModuleDef_HEAD_INIT, "rewind.accelerator._cbor",
    "The recorder's JSON event text to CBOR, in C (writer/binary_writer.py).", -1, cbor_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__cbor(void)
{
    PyObject *module = PyModule_Create(&cbor_module);
    if (module != NULL && PyModule_AddObject(module, "SOURCE_CRC", PyLong_FromUnsignedLong(REWIND_SOURCE_CRC)) < 0)
        Py_CLEAR(module);
    return module;
}
