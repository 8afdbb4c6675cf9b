/* The slow-log row scanner: ``ENTRY_RE.findall`` in C, for entries in TiDB's canonical shape.

   ``Scanner(program, ngroups, fallback).findall(buf, start, end)`` returns exactly the list that
   ``tidbops.slowlog.parser.ENTRY_RE.findall(buf, start, end)`` returns. The program is built in
   ``parser.py`` from the same line specification as the regular expression's canonical alternative;
   each instruction below is a deterministic transcription of one piece of that expression (every piece
   is possessive/atomic, so the first match the regex engine finds is the only one: there is nothing to
   backtrack into). An entry the program does not accept is handed to ``fallback(buf, pos, end)``,
   which runs the expression itself at that position and returns ``(row, match_end)``: rejecting is
   always safe, accepting must agree with the expression (the tests compare both on generated, edited
   and fuzzed logs).

   Framing, like ``findall``: search ``# Time: `` from the current position (the expression's both
   alternatives start with it and its second alternative always matches there), try the program, go on
   from the end of the match.

   Pure byte scanning with memchr/memcmp; no allocation except the row tuples and their bytes. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

enum {
    OP_TIME = 0,         /* (op, date_group, tod_group, zone_group)  # Time: <date>T<tod><zone>\n */
    OP_SKIP = 1,         /* (op, prefix)            (?:PREFIX[^\n]*\n)?+ */
    OP_SKIP_MANY = 2,    /* (op, prefix)            (?:PREFIX[^\n]*\n)*+ */
    OP_FIELD = 3,        /* (op, prefix, kind, g)   (?:PREFIX(?P<g>VALUE)\n)?+ */
    OP_REQUIRED = 4,     /* (op, prefix, kind, g)   PREFIX(?P<g>VALUE)\n */
    OP_USER_HOST = 5,    /* (op, prefix, user_g, host_g) */
    OP_EXEC = 6,         /* (op, lead_keys, items, repeat_prefix) the execution-details line */
    OP_CLOSED = 7,       /* (op, prefix, suffix)    (?:PREFIX[^\n]*SUFFIX\n)?+ */
    OP_OTHER = 8,        /* (op, excluded)          (?:# (?!EXCLUDED)[^\n]*\n)*+ */
    OP_TAIL = 9,         /* (op, use_g, sql_g)      the use line, the SQL line, then # Time: or the end */
};

enum {
    K_ANY = 0,      /* [^\n]*  (in an item: not used) */
    K_NONEMPTY = 1, /* [^\n]+ */
    K_INT = 2,      /* \d{1,18} */
    K_NUM = 3,      /* \d{1,6}(?:\.\d{1,9})? */
    K_TOKEN = 4,    /* [^ \n]+ */
    K_LIST = 5,     /* \[[^\]\n]*\] */
    K_OBJECT = 6,   /* \{(?:[^{}\n]|\{[^{}\n]*\})*\} */
    K_HEX64 = 7,    /* [0-9a-f]{64}  (a digest; in a line, not in an item) */
};

typedef struct {
    const char *s;
    Py_ssize_t n;
} Lit;

typedef struct {
    Lit key; /* "Key: " */
    int kind;
    int group; /* -1: not captured */
} Item;

typedef struct {
    int op;
    Lit a, b;     /* prefix / suffix / repeat prefix */
    int kind;
    int g1, g2, g3;
    Lit *lits;    /* OP_EXEC lead keys, OP_OTHER excluded starts */
    Py_ssize_t nlits;
    Item *items;  /* OP_EXEC */
    Py_ssize_t nitems;
} Step;

#define MAX_GROUPS 64
#define MAX_INT_DIGITS 18 /* counts below 10^18 (parser.MAX_INTEGER) */
#define CACHE_SLOTS 2048 /* per shared field: a direct-mapped cache of recent values */

typedef struct {
    PyObject_HEAD
    PyObject *program;  /* keeps the literals alive */
    PyObject *fallback;
    Step *steps;
    Py_ssize_t nsteps;
    int ngroups;
    int shared[MAX_GROUPS];  /* 1 + slot block of a field whose values repeat (digest, db …), else 0 */
    PyObject **cache;        /* nshared * CACHE_SLOTS values, NULL when empty */
    int nshared;
} Scanner;

typedef struct {
    Py_ssize_t at[MAX_GROUPS];
    Py_ssize_t len[MAX_GROUPS];
} Caps;

/* ------------------------------------------------------------------------------------------ matching */
typedef const unsigned char *Buf;

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* 1 for every byte that is not a lower-case hex digit [0-9a-f] (a digest's characters). */
static unsigned char NOT_HEX[256];

static void init_not_hex(void)
{
    for (int c = 0; c < 256; c++)
        NOT_HEX[c] = !(is_digit((unsigned char)c) || (c >= 'a' && c <= 'f'));
}

static inline int starts(Buf b, Py_ssize_t p, Py_ssize_t end, const Lit *lit)
{
    /* Most literals start with "# ": their third byte decides most comparisons without a call. */
    if (end - p < lit->n || (lit->n > 2 && b[p + 2] != (unsigned char)lit->s[2]))
        return 0;
    return memcmp(b + p, lit->s, (size_t)lit->n) == 0;
}

/* Index of the next newline at or after p, or -1. */
static inline Py_ssize_t newline(Buf b, Py_ssize_t p, Py_ssize_t end)
{
    if (p >= end)
        return -1;
    const unsigned char *q = memchr(b + p, '\n', (size_t)(end - p));
    return q ? (Py_ssize_t)(q - b) : -1;
}

static inline Py_ssize_t digits(Buf b, Py_ssize_t p, Py_ssize_t end, Py_ssize_t max)
{
    Py_ssize_t i = p;
    while (i < end && i - p < max && is_digit(b[i]))
        i++;
    return i - p;
}

/* End of \d{1,6}(?:\.\d{1,9})? taken greedily from p, or -1. */
static Py_ssize_t num_end(Buf b, Py_ssize_t p, Py_ssize_t end)
{
    Py_ssize_t d = digits(b, p, end, 6);
    if (d == 0)
        return -1;
    Py_ssize_t x = p + d;
    if (x + 1 < end && b[x] == '.' && is_digit(b[x + 1]))
        x += 1 + digits(b, x + 1, end, 9);
    return x;
}

/* Does [v, q) (a whole rest of line) match the value kind? */
static int value_fullmatch(Buf b, Py_ssize_t v, Py_ssize_t q, int kind)
{
    switch (kind) {
    case K_ANY:
        return 1;
    case K_NONEMPTY:
        return q > v;
    case K_INT:
        return q > v && q - v <= MAX_INT_DIGITS && digits(b, v, q, q - v) == q - v;
    case K_NUM:
        return num_end(b, v, q) == q;
    case K_HEX64: {
        if (q - v != 64)
            return 0;
        unsigned char bad = 0;
        for (Py_ssize_t i = v; i < q; i++)
            bad |= NOT_HEX[b[i]];
        return !bad;
    }
    default:
        return 0;
    }
}

/* End of an item value of ``kind`` taken greedily from v (the regex's first match), or -1. */
static Py_ssize_t item_value_end(Buf b, Py_ssize_t v, Py_ssize_t end, int kind)
{
    Py_ssize_t i;
    switch (kind) {
    case K_NUM:
        return num_end(b, v, end);
    case K_INT:
        i = v + digits(b, v, end, MAX_INT_DIGITS);
        return i > v ? i : -1;
    case K_TOKEN:
        for (i = v; i < end && b[i] != ' ' && b[i] != '\n'; i++)
            ;
        return i > v ? i : -1;
    case K_LIST:
        if (v >= end || b[v] != '[')
            return -1;
        for (i = v + 1; i < end && b[i] != ']' && b[i] != '\n'; i++)
            ;
        return (i < end && b[i] == ']') ? i + 1 : -1;
    case K_OBJECT:
        if (v >= end || b[v] != '{')
            return -1;
        i = v + 1;
        while (i < end) {
            unsigned char c = b[i];
            if (c == '}')
                return i + 1;
            if (c == '\n')
                return -1;
            if (c == '{') {
                Py_ssize_t j = i + 1;
                while (j < end && b[j] != '{' && b[j] != '}' && b[j] != '\n')
                    j++;
                if (j >= end || b[j] != '}')
                    return -1;
                i = j + 1;
            }
            else {
                i++;
            }
        }
        return -1;
    default:
        return -1;
    }
}

/* A real date of the years 1000-2999 (parser._DATE: the Gregorian calendar, written out as alternatives). */
static int valid_date(int y, int m, int d)
{
    static const int days[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1000 || y > 2999 || m < 1 || m > 12 || d < 1)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= days[m] + (m == 2 && leap);
}

static inline int two(Buf b, Py_ssize_t i) { return (b[i] - '0') * 10 + (b[i + 1] - '0'); }

/* # Time: (?P<date>_DATE)T(?P<tod>(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,9})?)(?P<zone>Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)\n
   at p (which starts with "# Time: "). Returns the position after the newline or -1. */
static Py_ssize_t match_time(Buf b, Py_ssize_t p, Py_ssize_t end, const Step *st, Caps *caps)
{
    Py_ssize_t d = p + 8, i;
    if (end - d < 10 + 1 + 8 + 1 + 1)
        return -1;
    if (!(is_digit(b[d]) && is_digit(b[d + 1]) && is_digit(b[d + 2]) && is_digit(b[d + 3]) && b[d + 4] == '-' &&
          is_digit(b[d + 5]) && is_digit(b[d + 6]) && b[d + 7] == '-' && is_digit(b[d + 8]) && is_digit(b[d + 9]) &&
          b[d + 10] == 'T'))
        return -1;
    if (!valid_date(two(b, d) * 100 + two(b, d + 2), two(b, d + 5), two(b, d + 8)))
        return -1;
    Py_ssize_t t = d + 11;
    if (!(is_digit(b[t]) && is_digit(b[t + 1]) && two(b, t) <= 23 && b[t + 2] == ':' && b[t + 3] >= '0' &&
          b[t + 3] <= '5' && is_digit(b[t + 4]) && b[t + 5] == ':' && b[t + 6] >= '0' && b[t + 6] <= '5' &&
          is_digit(b[t + 7])))
        return -1;
    i = t + 8;
    if (i < end && b[i] == '.') {
        Py_ssize_t f = digits(b, i + 1, end, 10);
        if (f < 1 || f > 9)
            return -1;
        i += 1 + f;
    }
    Py_ssize_t z = i;
    if (i < end && b[i] == 'Z') {
        i += 1;
    }
    else if (end - i >= 6 && (b[i] == '+' || b[i] == '-') && is_digit(b[i + 1]) && is_digit(b[i + 2]) &&
             two(b, i + 1) <= 23 && b[i + 3] == ':' && b[i + 4] >= '0' && b[i + 4] <= '5' && is_digit(b[i + 5])) {
        i += 6;
    }
    else {
        return -1;
    }
    if (i >= end || b[i] != '\n')
        return -1;
    caps->at[st->g1] = d, caps->len[st->g1] = 10;
    caps->at[st->g2] = t, caps->len[st->g2] = z - t;
    caps->at[st->g3] = z, caps->len[st->g3] = i - z;
    return i + 1;
}

/* (?:# User@Host: (?P<user>[^\[\] \n]*)\[[^\]\n]*\] @ (?P<host>[^\[\] \n]*) \[[^\]\n]*\]\n)?+ */
static Py_ssize_t match_user_host(Buf b, Py_ssize_t p, Py_ssize_t end, const Step *st, Caps *caps)
{
    if (!starts(b, p, end, &st->a))
        return p;
    Py_ssize_t v = p + st->a.n, q = newline(b, v, end), i = v, u, h;
    if (q < 0)
        return p;
    while (i < q && b[i] != '[' && b[i] != ']' && b[i] != ' ')
        i++;
    u = i;
    if (i >= q || b[i] != '[')
        return p;
    for (i++; i < q && b[i] != ']'; i++)
        ;
    if (i >= q)
        return p;
    i++;
    if (q - i < 3 || b[i] != ' ' || b[i + 1] != '@' || b[i + 2] != ' ')
        return p;
    i += 3;
    Py_ssize_t hs = i;
    while (i < q && b[i] != '[' && b[i] != ']' && b[i] != ' ')
        i++;
    h = i;
    if (q - i < 2 || b[i] != ' ' || b[i + 1] != '[')
        return p;
    for (i += 2; i < q && b[i] != ']'; i++)
        ;
    if (i >= q || i + 1 != q)
        return p;
    caps->at[st->g1] = v, caps->len[st->g1] = u - v;
    caps->at[st->g2] = hs, caps->len[st->g2] = h - hs;
    return q + 1;
}

/* The execution-details line: "# " + lookahead (a lead key, or Rocksdb_[a-z_]+ followed by ": "), then
   each item (?:Key: VALUE ?)?+ in order, then (?:Rocksdb_[a-z_]+: [^ \n]+ ?)*+, then (?<! )\n. The whole
   line is optional and atomic: captures count only when it matches. */
static Py_ssize_t rocks_item_end(Buf b, Py_ssize_t i, Py_ssize_t end, const Lit *rocks)
{
    if (!starts(b, i, end, rocks))
        return -1;
    Py_ssize_t j = i + rocks->n, k = j;
    while (k < end && ((b[k] >= 'a' && b[k] <= 'z') || b[k] == '_'))
        k++;
    if (k == j || end - k < 2 || b[k] != ':' || b[k + 1] != ' ')
        return -1;
    return k + 2;
}

static Py_ssize_t match_exec(Buf b, Py_ssize_t p, Py_ssize_t end, const Step *st, Caps *caps)
{
    if (end - p < 2 || b[p] != '#' || b[p + 1] != ' ')
        return p;
    Py_ssize_t i = p + 2, k;
    int lead = rocks_item_end(b, i, end, &st->a) >= 0;
    for (k = 0; !lead && k < st->nlits; k++)
        lead = starts(b, i, end, &st->lits[k]);
    if (!lead)
        return p;
    Py_ssize_t at[MAX_GROUPS], len[MAX_GROUPS];
    int groups[MAX_GROUPS];
    int ncap = 0;
    for (k = 0; k < st->nitems; k++) {
        const Item *it = &st->items[k];
        if (!starts(b, i, end, &it->key))
            continue;
        Py_ssize_t v = i + it->key.n, ve = item_value_end(b, v, end, it->kind);
        if (ve < 0)
            continue;
        if (it->group >= 0 && ncap < MAX_GROUPS) {
            groups[ncap] = it->group, at[ncap] = v, len[ncap] = ve - v;
            ncap++;
        }
        i = (ve < end && b[ve] == ' ') ? ve + 1 : ve;
    }
    for (;;) {
        Py_ssize_t v = rocks_item_end(b, i, end, &st->a), ve;
        if (v < 0)
            break;
        for (ve = v; ve < end && b[ve] != ' ' && b[ve] != '\n'; ve++)
            ;
        if (ve == v)
            break;
        i = (ve < end && b[ve] == ' ') ? ve + 1 : ve;
    }
    if (i >= end || b[i] != '\n' || b[i - 1] == ' ')
        return p;
    for (k = 0; k < ncap; k++)
        caps->at[groups[k]] = at[k], caps->len[groups[k]] = len[k];
    return i + 1;
}

/* (?:use (?P<use_db>[^\n]*);\n)?(?P<sql>(?!# )[^\n]*;)(?:\n|\Z)(?=# Time: |\Z), -1 when it fails. */
static const Lit TIME_LIT = {"# Time: ", 8};

static Py_ssize_t sql_line_end(Buf b, Py_ssize_t p, Py_ssize_t end, Py_ssize_t *sql_end)
{
    if (end - p >= 2 && b[p] == '#' && b[p + 1] == ' ')
        return -1;
    Py_ssize_t q = newline(b, p, end), r;
    if (q < 0)
        q = end, r = end;
    else
        r = q + 1;
    if (q <= p || b[q - 1] != ';')
        return -1;
    if (!(r == end || starts(b, r, end, &TIME_LIT)))
        return -1;
    *sql_end = q;
    return r;
}

static Py_ssize_t match_tail(Buf b, Py_ssize_t p, Py_ssize_t end, const Step *st, Caps *caps)
{
    Py_ssize_t q1 = newline(b, p, end), sql_end, r;
    if (q1 >= 0 && q1 - p >= 5 && memcmp(b + p, "use ", 4) == 0 && b[q1 - 1] == ';') {
        r = sql_line_end(b, q1 + 1, end, &sql_end);
        if (r >= 0) {
            caps->at[st->g1] = p + 4, caps->len[st->g1] = q1 - 1 - (p + 4);
            caps->at[st->g2] = q1 + 1, caps->len[st->g2] = sql_end - (q1 + 1);
            return r;
        }
    }
    r = sql_line_end(b, p, end, &sql_end);
    if (r < 0)
        return -1;
    caps->at[st->g2] = p, caps->len[st->g2] = sql_end - p;
    return r;
}

/* The canonical alternative at p; returns the end of the match or -1. */
static Py_ssize_t match_canonical(const Scanner *sc, Buf b, Py_ssize_t p, Py_ssize_t end, Caps *caps)
{
    for (Py_ssize_t s = 0; s < sc->nsteps; s++) {
        const Step *st = &sc->steps[s];
        Py_ssize_t q;
        switch (st->op) {
        case OP_TIME:
            p = match_time(b, p, end, st, caps);
            if (p < 0)
                return -1;
            break;
        case OP_SKIP:
        case OP_SKIP_MANY:
            while (starts(b, p, end, &st->a) && (q = newline(b, p + st->a.n, end)) >= 0) {
                p = q + 1;
                if (st->op == OP_SKIP)
                    break;
            }
            break;
        case OP_FIELD:
        case OP_REQUIRED:
            if (starts(b, p, end, &st->a) && (q = newline(b, p + st->a.n, end)) >= 0 &&
                value_fullmatch(b, p + st->a.n, q, st->kind)) {
                caps->at[st->g1] = p + st->a.n, caps->len[st->g1] = q - (p + st->a.n);
                p = q + 1;
            }
            else if (st->op == OP_REQUIRED) {
                return -1;
            }
            break;
        case OP_USER_HOST:
            p = match_user_host(b, p, end, st, caps);
            break;
        case OP_EXEC:
            p = match_exec(b, p, end, st, caps);
            break;
        case OP_CLOSED:
            if (starts(b, p, end, &st->a) && (q = newline(b, p + st->a.n, end)) >= 0 &&
                q - (p + st->a.n) >= st->b.n && memcmp(b + q - st->b.n, st->b.s, (size_t)st->b.n) == 0)
                p = q + 1;
            break;
        case OP_OTHER:
            for (;;) {
                if (end - p < 2 || b[p] != '#' || b[p + 1] != ' ')
                    break;
                int excluded = 0;
                for (Py_ssize_t k = 0; !excluded && k < st->nlits; k++)
                    excluded = starts(b, p + 2, end, &st->lits[k]);
                if (excluded || (q = newline(b, p + 2, end)) < 0)
                    break;
                p = q + 1;
            }
            break;
        case OP_TAIL:
            p = match_tail(b, p, end, st, caps);
            if (p < 0)
                return -1;
            break;
        default:
            return -1;
        }
    }
    return p;
}

/* -------------------------------------------------------------------------------------- the type */
static PyObject *empty_bytes;

static int lit_of(PyObject *obj, Lit *lit)
{
    if (!PyBytes_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "program literals must be bytes");
        return -1;
    }
    lit->s = PyBytes_AS_STRING(obj);
    lit->n = PyBytes_GET_SIZE(obj);
    return 0;
}

static int int_of(PyObject *obj, int *out, int lo, int hi)
{
    long v = PyLong_AsLong(obj);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < lo || v >= hi) {
        PyErr_SetString(PyExc_ValueError, "program number out of range");
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int lits_of(PyObject *seq, Lit **lits, Py_ssize_t *n)
{
    if (!PyTuple_Check(seq)) {
        PyErr_SetString(PyExc_TypeError, "expected a tuple of bytes");
        return -1;
    }
    *n = PyTuple_GET_SIZE(seq);
    *lits = PyMem_Calloc((size_t)(*n ? *n : 1), sizeof(Lit));
    if (!*lits) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t k = 0; k < *n; k++)
        if (lit_of(PyTuple_GET_ITEM(seq, k), &(*lits)[k]) < 0)
            return -1;
    return 0;
}

static void free_steps(Scanner *self)
{
    if (self->steps) {
        for (Py_ssize_t s = 0; s < self->nsteps; s++) {
            PyMem_Free(self->steps[s].lits);
            PyMem_Free(self->steps[s].items);
        }
        PyMem_Free(self->steps);
        self->steps = NULL;
    }
}

static void clear_cache(Scanner *self)
{
    if (self->cache) {
        for (Py_ssize_t k = 0; k < (Py_ssize_t)self->nshared * CACHE_SLOTS; k++)
            Py_XDECREF(self->cache[k]);
        PyMem_Free(self->cache);
        self->cache = NULL;
    }
}

static int compile_step(PyObject *t, Step *st, int ngroups)
{
    Py_ssize_t n = PyTuple_Check(t) ? PyTuple_GET_SIZE(t) : 0;
    if (n < 1) {
        PyErr_SetString(PyExc_TypeError, "a program step is a non-empty tuple");
        return -1;
    }
#define ARG(i) PyTuple_GET_ITEM(t, (i))
#define NEED(k)                                                                                                  \
    if (n != (k)) {                                                                                              \
        PyErr_SetString(PyExc_ValueError, "wrong number of step arguments");                                   \
        return -1;                                                                                               \
    }
    if (int_of(ARG(0), &st->op, 0, OP_TAIL + 1) < 0)
        return -1;
    st->g1 = st->g2 = st->g3 = 0;
    switch (st->op) {
    case OP_TIME:
        NEED(4);
        return (int_of(ARG(1), &st->g1, 0, ngroups) < 0 || int_of(ARG(2), &st->g2, 0, ngroups) < 0 ||
                int_of(ARG(3), &st->g3, 0, ngroups) < 0)
                   ? -1
                   : 0;
    case OP_SKIP:
    case OP_SKIP_MANY:
        NEED(2);
        if (lit_of(ARG(1), &st->a) < 0)
            return -1;
        if (st->a.n == 0) {
            PyErr_SetString(PyExc_ValueError, "empty prefix");
            return -1;
        }
        return 0;
    case OP_FIELD:
    case OP_REQUIRED:
        NEED(4);
        if (lit_of(ARG(1), &st->a) < 0 || int_of(ARG(2), &st->kind, K_ANY, K_HEX64 + 1) < 0 ||
            int_of(ARG(3), &st->g1, 0, ngroups) < 0)
            return -1;
        if (st->kind > K_NUM && st->kind != K_HEX64) {
            PyErr_SetString(PyExc_ValueError, "a line value is any, nonempty, int, num or hex64");
            return -1;
        }
        return 0;
    case OP_USER_HOST:
        NEED(4);
        return (lit_of(ARG(1), &st->a) < 0 || int_of(ARG(2), &st->g1, 0, ngroups) < 0 ||
                int_of(ARG(3), &st->g2, 0, ngroups) < 0)
                   ? -1
                   : 0;
    case OP_EXEC: {
        NEED(4);
        if (lits_of(ARG(1), &st->lits, &st->nlits) < 0 || lit_of(ARG(3), &st->a) < 0)
            return -1;
        PyObject *items = ARG(2);
        if (!PyTuple_Check(items)) {
            PyErr_SetString(PyExc_TypeError, "exec items must be a tuple");
            return -1;
        }
        st->nitems = PyTuple_GET_SIZE(items);
        st->items = PyMem_Calloc((size_t)(st->nitems ? st->nitems : 1), sizeof(Item));
        if (!st->items) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t k = 0; k < st->nitems; k++) {
            PyObject *it = PyTuple_GET_ITEM(items, k);
            if (!PyTuple_Check(it) || PyTuple_GET_SIZE(it) != 3) {
                PyErr_SetString(PyExc_TypeError, "an exec item is (key, kind, group)");
                return -1;
            }
            if (lit_of(PyTuple_GET_ITEM(it, 0), &st->items[k].key) < 0 ||
                int_of(PyTuple_GET_ITEM(it, 1), &st->items[k].kind, K_INT, K_OBJECT + 1) < 0 ||
                int_of(PyTuple_GET_ITEM(it, 2), &st->items[k].group, -1, ngroups) < 0)
                return -1;
        }
        return 0;
    }
    case OP_CLOSED:
        NEED(3);
        return (lit_of(ARG(1), &st->a) < 0 || lit_of(ARG(2), &st->b) < 0) ? -1 : 0;
    case OP_OTHER:
        NEED(2);
        return lits_of(ARG(1), &st->lits, &st->nlits);
    case OP_TAIL:
        NEED(3);
        return (int_of(ARG(1), &st->g1, 0, ngroups) < 0 || int_of(ARG(2), &st->g2, 0, ngroups) < 0) ? -1 : 0;
    }
#undef ARG
#undef NEED
    return -1;
}

static int Scanner_init(Scanner *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"program", "ngroups", "fallback", "shared", NULL};
    PyObject *program, *fallback, *shared = NULL;
    int ngroups;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!iO|O!:Scanner", kwlist, &PyTuple_Type, &program, &ngroups,
                                     &fallback, &PyTuple_Type, &shared))
        return -1;
    if (ngroups < 1 || ngroups > MAX_GROUPS) {
        PyErr_SetString(PyExc_ValueError, "ngroups out of range");
        return -1;
    }
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "fallback must be callable");
        return -1;
    }
    free_steps(self);
    clear_cache(self);
    memset(self->shared, 0, sizeof(self->shared));
    self->nshared = 0;
    if (shared) {
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(shared); k++) {
            int g;
            if (int_of(PyTuple_GET_ITEM(shared, k), &g, 0, ngroups) < 0)
                return -1;
            if (!self->shared[g])
                self->shared[g] = ++self->nshared;
        }
        if (self->nshared) {
            self->cache = PyMem_Calloc((size_t)self->nshared * CACHE_SLOTS, sizeof(PyObject *));
            if (!self->cache) {
                self->nshared = 0;
                memset(self->shared, 0, sizeof(self->shared));
                PyErr_NoMemory();
                return -1;
            }
        }
    }
    Py_ssize_t n = PyTuple_GET_SIZE(program);
    self->steps = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Step));
    if (!self->steps) {
        PyErr_NoMemory();
        return -1;
    }
    self->nsteps = n;
    for (Py_ssize_t s = 0; s < n; s++)
        if (compile_step(PyTuple_GET_ITEM(program, s), &self->steps[s], ngroups) < 0) {
            free_steps(self);
            self->nsteps = 0;
            return -1;
        }
    Py_INCREF(program);
    Py_XSETREF(self->program, program);
    Py_INCREF(fallback);
    Py_XSETREF(self->fallback, fallback);
    self->ngroups = ngroups;
    return 0;
}

static void Scanner_dealloc(Scanner *self)
{
    free_steps(self);
    clear_cache(self);
    Py_XDECREF(self->program);
    Py_XDECREF(self->fallback);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The bytes of [at, at + len): for a shared field, the object of the same value met before, if cached
   (equal values, one object: less memory, and its hash is computed once). */
static PyObject *field_bytes(Scanner *sc, int g, Buf b, Py_ssize_t at, Py_ssize_t len)
{
    const char *s = (const char *)b + at;
    int block = sc->shared[g];
    if (!block || !sc->cache)
        return PyBytes_FromStringAndSize(s, len);
    uint32_t h = 2166136261u; /* FNV-1a */
    for (Py_ssize_t k = 0; k < len; k++)
        h = (h ^ (unsigned char)s[k]) * 16777619u;
    PyObject **slot = &sc->cache[(Py_ssize_t)(block - 1) * CACHE_SLOTS + (h & (CACHE_SLOTS - 1))];
    PyObject *old = *slot;
    if (old && PyBytes_GET_SIZE(old) == len && memcmp(PyBytes_AS_STRING(old), s, (size_t)len) == 0)
        return Py_NewRef(old);
    PyObject *item = PyBytes_FromStringAndSize(s, len);
    if (item)
        Py_XSETREF(*slot, Py_NewRef(item));
    return item;
}

static PyObject *row_of(Scanner *sc, const Caps *caps, Buf b)
{
    PyObject *row = PyTuple_New(sc->ngroups);
    if (!row)
        return NULL;
    for (int g = 0; g < sc->ngroups; g++) {
        PyObject *item;
        if (caps->at[g] < 0 || caps->len[g] == 0) {
            item = Py_NewRef(empty_bytes);
        }
        else {
            item = field_bytes(sc, g, b, caps->at[g], caps->len[g]);
            if (!item) {
                Py_DECREF(row);
                return NULL;
            }
        }
        PyTuple_SET_ITEM(row, g, item);
    }
    /* Only bytes inside: the row can never be part of a reference cycle, so the collector need not
       track it (CPython's own collector untracks such tuples when it meets them). */
    PyObject_GC_UnTrack(row);
    return row;
}

static PyObject *Scanner_findall(Scanner *self, PyObject *args)
{
    PyObject *obj;
    Py_ssize_t start = 0, end = PY_SSIZE_T_MAX;
    if (!PyArg_ParseTuple(args, "O|nn:findall", &obj, &start, &end))
        return NULL;
    if (!self->steps) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner not initialised");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Buf b = view.buf;
    /* findall's clamping of pos/endpos */
    if (start < 0)
        start = 0;
    if (end > view.len)
        end = view.len;
    if (end < 0)
        end = 0;
    PyObject *rows = PyList_New(0);
    if (!rows)
        goto fail;
    Py_ssize_t pos = start;
    Caps caps;
    while (pos < end) {
        /* search "# Time: " from pos */
        Py_ssize_t s;
        if (end - pos >= 8 && memcmp(b + pos, "# Time: ", 8) == 0) {
            s = pos;
        }
        else {
            const unsigned char *hit = NULL;
            if (end - pos >= 8) {
#ifdef _GNU_SOURCE
                hit = memmem(b + pos, (size_t)(end - pos), "# Time: ", 8);
#else
                for (Py_ssize_t k = pos; k + 8 <= end; k++)
                    if (b[k] == '#' && memcmp(b + k, "# Time: ", 8) == 0) {
                        hit = b + k;
                        break;
                    }
#endif
            }
            if (!hit)
                break;
            s = (Py_ssize_t)(hit - b);
        }
        for (int g = 0; g < self->ngroups; g++)
            caps.at[g] = -1, caps.len[g] = 0;
        Py_ssize_t e = match_canonical(self, b, s, end, &caps);
        PyObject *row;
        if (e > s) {
            row = row_of(self, &caps, b);
            if (!row)
                goto fail;
        }
        else {
            PyObject *res = PyObject_CallFunction(self->fallback, "Onn", obj, s, end);
            if (!res)
                goto fail;
            Py_ssize_t next;
            if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 2 ||
                (next = PyLong_AsSsize_t(PyTuple_GET_ITEM(res, 1))) == -1 || next <= s || next > end) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_ValueError, "fallback must return (row, end) past the start");
                Py_DECREF(res);
                goto fail;
            }
            row = Py_NewRef(PyTuple_GET_ITEM(res, 0));
            Py_DECREF(res);
            e = next;
        }
        if (PyList_Append(rows, row) < 0) {
            Py_DECREF(row);
            goto fail;
        }
        Py_DECREF(row);
        pos = e;
    }
    PyBuffer_Release(&view);
    return rows;
fail:
    Py_XDECREF(rows);
    PyBuffer_Release(&view);
    return NULL;
}

static PyMethodDef Scanner_methods[] = {
    {"findall", (PyCFunction)Scanner_findall, METH_VARARGS,
     "findall(buf, start=0, end=sys.maxsize) -> list of rows, as ENTRY_RE.findall(buf, start, end)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tidbops.slowlog._scan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Scanner(program, ngroups, fallback, shared=()): ENTRY_RE.findall for canonical slow-log entries",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
};


/* ----------------------------------------------------------------------------------- column fold */
/* Exact integer nanoseconds of a decimal number of seconds \d{1,6}(?:\.\d{1,9})? (the shape the program
   captures), or -1 for any other shape. */
static int64_t seconds_ns(const char *s, Py_ssize_t n)
{
    static const int64_t scale[10] = {1000000000, 100000000, 10000000, 1000000, 100000,
                                      10000,      1000,      100,      10,      1};
    Py_ssize_t i = 0;
    int64_t whole = 0, frac = 0;
    while (i < n && is_digit((unsigned char)s[i]) && i < 6)
        whole = whole * 10 + (s[i++] - '0');
    if (i == 0)
        return -1;
    if (i < n) {
        if (s[i] != '.')
            return -1;
        Py_ssize_t f0 = ++i;
        while (i < n && is_digit((unsigned char)s[i]) && i - f0 < 9)
            frac = frac * 10 + (s[i++] - '0');
        if (i == f0 || i != n)
            return -1;
        frac *= scale[i - f0];
    }
    return whole * 1000000000 + frac;
}

/* \d{1,18} as an integer, or -1 (longer numbers are left to Python's ints). */
static int64_t small_int(const char *s, Py_ssize_t n)
{
    if (n < 1 || n > 18)
        return -1;
    int64_t v = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

#define FOLD_SUMS 3

/* fold(rows, qt, ns_fields, int_fields, mem, inv_log_gamma) -> tuple | None

   The numeric columns of canonical rows, exactly as aggregate._fold_rows computes them in Python:
   (query_time_ns, max_ns, indices of the rows with max_ns, {bucket: count}, zeros, (ns sums), (int sums),
   max of mem). Times are integer nanoseconds of the decimal text (what round(float(v) * 1e9) gives for
   these shapes), empty values are skipped in the sums, a bucket is ceil(log(v) * inv_log_gamma) with v the
   double nearest the decimal (ns / 1e9 is that double: both are exact and IEEE division rounds
   correctly). None when a value has another shape or a sum would overflow: the caller uses Python. */
static PyObject *fold(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *rows, *ns_fields, *int_fields;
    int qt, mem;
    double inv;
    if (!PyArg_ParseTuple(args, "O!iO!O!id:fold", &PyList_Type, &rows, &qt, &PyTuple_Type, &ns_fields, &PyTuple_Type,
                          &int_fields, &mem, &inv))
        return NULL;
    if (PyTuple_GET_SIZE(ns_fields) != FOLD_SUMS || PyTuple_GET_SIZE(int_fields) != FOLD_SUMS) {
        PyErr_SetString(PyExc_ValueError, "fold needs three ns fields and three int fields");
        return NULL;
    }
    int nsf[FOLD_SUMS], inf[FOLD_SUMS];
    for (int k = 0; k < FOLD_SUMS; k++) {
        if (int_of(PyTuple_GET_ITEM(ns_fields, k), &nsf[k], 0, MAX_GROUPS) < 0 ||
            int_of(PyTuple_GET_ITEM(int_fields, k), &inf[k], 0, MAX_GROUPS) < 0)
            return NULL;
    }
    if (qt < 0 || mem < 0 || qt >= MAX_GROUPS || mem >= MAX_GROUPS) {
        PyErr_SetString(PyExc_ValueError, "field index out of range");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(rows);
    if (n == 0)
        Py_RETURN_NONE;
    uint64_t total = 0, ns_sum[FOLD_SUMS] = {0, 0, 0}, int_sum[FOLD_SUMS] = {0, 0, 0};
    int64_t top = -1, mem_max = 0;
    Py_ssize_t zeros = 0, ntop = 0;
    PyObject *buckets = NULL, *tops = NULL, *result = NULL;
    long last_bucket = 0;
    Py_ssize_t run = 0; /* consecutive values in last_bucket, added in one dict update */

#define FIELD(row, i, sp, np)                                                                                      \
    do {                                                                                                           \
        PyObject *f_ = (i) < PyTuple_GET_SIZE(row) ? PyTuple_GET_ITEM(row, i) : NULL;                           \
        if (!f_ || !PyBytes_Check(f_))                                                                             \
            goto not_fast;                                                                                         \
        sp = PyBytes_AS_STRING(f_);                                                                                \
        np = PyBytes_GET_SIZE(f_);                                                                                 \
    } while (0)

    buckets = PyDict_New();
    if (!buckets)
        return NULL;
    for (Py_ssize_t r = 0; r < n; r++) {
        PyObject *row = PyList_GET_ITEM(rows, r);
        if (!PyTuple_Check(row))
            goto not_fast;
        const char *sp;
        Py_ssize_t np;
        FIELD(row, qt, sp, np);
        int64_t v = seconds_ns(sp, np);
        if (v < 0)
            goto not_fast;
        if (total + (uint64_t)v < total)
            goto not_fast;
        total += (uint64_t)v;
        if (v > top)
            top = v, ntop = 1;
        else if (v == top)
            ntop++;
        if (v == 0) {
            zeros++;
        }
        else {
            long b = (long)ceil(log((double)v / 1e9) * inv);
            if (run && b == last_bucket) {
                run++;
            }
            else {
                if (run) {
                    PyObject *key = PyLong_FromLong(last_bucket), *old, *cnt;
                    if (!key)
                        goto fail;
                    old = PyDict_GetItemWithError(buckets, key);
                    if (!old && PyErr_Occurred()) {
                        Py_DECREF(key);
                        goto fail;
                    }
                    cnt = PyLong_FromSsize_t((old ? PyLong_AsSsize_t(old) : 0) + run);
                    if (!cnt || PyDict_SetItem(buckets, key, cnt) < 0) {
                        Py_XDECREF(cnt);
                        Py_DECREF(key);
                        goto fail;
                    }
                    Py_DECREF(cnt);
                    Py_DECREF(key);
                }
                last_bucket = b, run = 1;
            }
        }
        for (int k = 0; k < FOLD_SUMS; k++) {
            FIELD(row, nsf[k], sp, np);
            if (np) {
                int64_t x = seconds_ns(sp, np);
                if (x < 0 || ns_sum[k] + (uint64_t)x < ns_sum[k])
                    goto not_fast;
                ns_sum[k] += (uint64_t)x;
            }
            FIELD(row, inf[k], sp, np);
            if (np) {
                int64_t x = small_int(sp, np);
                if (x < 0 || int_sum[k] + (uint64_t)x < int_sum[k])
                    goto not_fast;
                int_sum[k] += (uint64_t)x;
            }
        }
        FIELD(row, mem, sp, np);
        if (np) {
            int64_t x = small_int(sp, np);
            if (x < 0)
                goto not_fast;
            if (x > mem_max)
                mem_max = x;
        }
    }
    if (run) {
        PyObject *key = PyLong_FromLong(last_bucket), *old, *cnt;
        if (!key)
            goto fail;
        old = PyDict_GetItemWithError(buckets, key);
        if (!old && PyErr_Occurred()) {
            Py_DECREF(key);
            goto fail;
        }
        cnt = PyLong_FromSsize_t((old ? PyLong_AsSsize_t(old) : 0) + run);
        if (!cnt || PyDict_SetItem(buckets, key, cnt) < 0) {
            Py_XDECREF(cnt);
            Py_DECREF(key);
            goto fail;
        }
        Py_DECREF(cnt);
        Py_DECREF(key);
    }
    tops = PyList_New(0);
    if (!tops)
        goto fail;
    for (Py_ssize_t r = 0; r < n && PyList_GET_SIZE(tops) < ntop; r++) {
        const char *sp;
        Py_ssize_t np;
        FIELD(PyList_GET_ITEM(rows, r), qt, sp, np);
        if (seconds_ns(sp, np) == top) {
            PyObject *i = PyLong_FromSsize_t(r);
            if (!i || PyList_Append(tops, i) < 0) {
                Py_XDECREF(i);
                goto fail;
            }
            Py_DECREF(i);
        }
    }
    result = Py_BuildValue("(KLNNn(KKK)(KKK)L)", (unsigned long long)total, (long long)top, tops, buckets, zeros,
                           (unsigned long long)ns_sum[0], (unsigned long long)ns_sum[1],
                           (unsigned long long)ns_sum[2], (unsigned long long)int_sum[0],
                           (unsigned long long)int_sum[1], (unsigned long long)int_sum[2], (long long)mem_max);
    return result; /* N stole tops and buckets (also on failure) */
not_fast:
    Py_XDECREF(tops);
    Py_XDECREF(buckets);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(tops);
    Py_XDECREF(buckets);
    return NULL;
#undef FIELD
}

static PyMethodDef module_methods[] = {
    {"fold", fold, METH_VARARGS,
     "fold(rows, qt, ns_fields, int_fields, mem, inv_log_gamma) -> tuple | None: the numeric columns of rows"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef scanmodule = {
    PyModuleDef_HEAD_INIT, .m_name = "tidbops.slowlog._scan",
    .m_doc = "ENTRY_RE.findall in C for canonical TiDB slow-log entries (see parser.py), and the column fold of\n"
             "their numbers (see aggregate.py).",
    .m_size = -1, .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__scan(void)
{
    if (PyType_Ready(&ScannerType) < 0)
        return NULL;
    init_not_hex();
    empty_bytes = PyBytes_FromStringAndSize("", 0);
    if (!empty_bytes)
        return NULL;
    PyObject *m = PyModule_Create(&scanmodule);
    if (!m)
        return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
