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
    /* Most literals start with "# ": their third byte decides most comparisons at once. The literals are
       short (a key): compared eight bytes at a time, inline (a call to memcmp costs more than the work). */
    Py_ssize_t n = lit->n, i = 0;
    if (end - p < n || (n > 2 && b[p + 2] != (unsigned char)lit->s[2]))
        return 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, b + p + i, 8);
        memcpy(&y, lit->s + i, 8);
        if (x != y)
            return 0;
    }
    for (; i < n; i++)
        if (b[p + i] != (unsigned char)lit->s[i])
            return 0;
    return 1;
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

/* The first occurrence of s[:n] in b[from:end], or NULL. */
static const unsigned char *find(Buf b, Py_ssize_t from, Py_ssize_t end, const char *s, Py_ssize_t n)
{
    if (end - from < n)
        return NULL;
#ifdef _GNU_SOURCE
    return memmem(b + from, (size_t)(end - from), s, (size_t)n);
#else
    for (Py_ssize_t k = from; k + n <= end; k++)
        if (b[k] == (unsigned char)s[0] && memcmp(b + k, s, (size_t)n) == 0)
            return b + k;
    return NULL;
#endif
}

/* Where the next entry starts at or after pos, as findall searches: "# Time: " (both alternatives of the
   expression start with it, and the second always matches there); -1 when there is none. */
static Py_ssize_t next_entry(Buf b, Py_ssize_t pos, Py_ssize_t end)
{
    if (end - pos >= 8 && memcmp(b + pos, "# Time: ", 8) == 0)
        return pos;
    const unsigned char *hit = find(b, pos, end, "# Time: ", 8);
    return hit ? (Py_ssize_t)(hit - b) : -1;
}

/* The buffer of obj, with [start, end) clamped as findall clamps pos and endpos; -1 with an exception. */
static int get_span(PyObject *obj, Py_buffer *view, Py_ssize_t *start, Py_ssize_t *end)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0)
        return -1;
    if (*start < 0)
        *start = 0;
    if (*end > view->len)
        *end = view->len;
    if (*end < 0)
        *end = 0;
    return 0;
}

static inline void clear_caps(Caps *caps, int ngroups)
{
    for (int g = 0; g < ngroups; g++)
        caps->at[g] = -1, caps->len[g] = 0;
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
    if (get_span(obj, &view, &start, &end) < 0)
        return NULL;
    Buf b = view.buf;
    PyObject *rows = PyList_New(0);
    if (!rows)
        goto fail;
    Py_ssize_t pos = start, s;
    Caps caps;
    while (pos < end && (s = next_entry(b, pos, end)) >= 0) {
        clear_caps(&caps, self->ngroups);
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

/* ------------------------------------------------------------------------------------ the group fold */
/* Groups(fields, inv_log_gamma, include_internal, since, until, sample_text): the daily aggregates of
   canonical entries folded straight from the buffer, without a row object per entry.

   ``Groups.scan(scanner, buf, start, end)`` frames entries like ``Scanner.findall``; an entry the program
   accepts is added to its group, keyed by (date, digest, plan digest, db, user): count, errors (Succ:
   false), exact nanosecond sums (128-bit: no sum overflows), the histogram's bucket counts, the maximum
   query time, memory maximum, first and last time, and the sample (slowest, then earliest, then the
   smaller ``sample_text``). Every number is what ``aggregate.DigestStats.add`` computes for that entry:
   times as integer nanoseconds of the decimal text, a bucket as ceil(log(v) * inv_log_gamma) with v the
   double nearest the decimal, an entry's time as ``parser.parse_slow_log_time`` computes it (the same
   double operations in the same order). An entry the program does not accept is returned as the row of
   the expression's second alternative (``other``: its text up to the next entry), for the general
   parser; internal entries (unless included) and entries outside [since, until) are only counted.
   ``day_offset`` (seconds east of UTC; None: the date as written in the log) keys an entry by its date in
   that fixed zone instead, as ``datetime.fromtimestamp(time, timezone(timedelta(seconds=day_offset)))``
   gives it (the time rounded half-even to the microsecond first, as CPython does); an entry whose date
   there falls outside years 1-9999 is handed to the general parser.
   ``results()`` returns the groups; the tests compare them with the entry-by-entry aggregates. */

enum {
    F_DATE, F_TOD, F_ZONE, F_DIGEST, F_PLAN, F_DB, F_USER, F_INTERNAL, F_SUCC, F_QT, F_PT, F_WT, F_BT, F_PK,
    F_TK, F_ROWS, F_MEM, F_SQL, F_OTHER, NFIELDS
};
#define KEY_FIELDS 5 /* date, digest, plan digest, db, user */
#define NSUMS 6      /* process, wait, backoff (ns); process keys, total keys, result rows */

typedef struct {
    uint64_t lo, hi;
} U128;

static inline void add128(U128 *a, uint64_t x)
{
    a->lo += x;
    if (a->lo < x)
        a->hi++;
}

static PyObject *long_of(U128 a)
{
    if (!a.hi)
        return PyLong_FromUnsignedLongLong(a.lo);
    PyObject *hi = PyLong_FromUnsignedLongLong(a.hi), *lo = PyLong_FromUnsignedLongLong(a.lo), *sh = NULL,
             *shifted = NULL, *out = NULL;
    if (hi && lo && (sh = PyLong_FromLong(64)) && (shifted = PyNumber_Lshift(hi, sh)))
        out = PyNumber_Or(shifted, lo);
    Py_XDECREF(hi);
    Py_XDECREF(lo);
    Py_XDECREF(sh);
    Py_XDECREF(shifted);
    return out;
}

typedef struct {
    uint64_t hash;
    char *key; /* per key field: 4-byte length, then the bytes */
    Py_ssize_t klen;
    int64_t count, errors, zeros, top_ns, mem_max;
    U128 qt, sums[NSUMS];
    double first, last;
    char *sample; /* the sample's SQL as written */
    Py_ssize_t sample_len;
    double sample_when;
    PyObject *sample_key; /* sample_text(decoded sample), made only when a tie needs it */
    long blo;             /* bucket of bcounts[0] */
    Py_ssize_t bn;
    int64_t *bcounts;
} Group;

typedef struct {
    PyObject_HEAD
    int f[NFIELDS];
    double inv;
    int include_internal, has_since, has_until, has_day_offset;
    double since, until;
    int64_t day_offset; /* seconds east of UTC of the zone that defines the day (has_day_offset) */
    PyObject *sample_text; /* callable or NULL */
    long long entries, skipped_internal, skipped_by_time;
    Group *groups;
    Py_ssize_t ngroups, gcap;
    Py_ssize_t *slots; /* 1 + index into groups, 0 when empty; a power of two */
    Py_ssize_t nslots;
    char *scratch;
    Py_ssize_t scap;
} Groups;

static void free_group(Group *g)
{
    PyMem_Free(g->key);
    PyMem_Free(g->sample);
    PyMem_Free(g->bcounts);
    Py_CLEAR(g->sample_key);
}

static void Groups_clear_table(Groups *self)
{
    for (Py_ssize_t i = 0; i < self->ngroups; i++)
        free_group(&self->groups[i]);
    PyMem_Free(self->groups);
    PyMem_Free(self->slots);
    self->groups = NULL, self->slots = NULL;
    self->ngroups = self->gcap = self->nslots = 0;
}

static void Groups_dealloc(Groups *self)
{
    Groups_clear_table(self);
    PyMem_Free(self->scratch);
    Py_CLEAR(self->sample_text);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int opt_time(PyObject *obj, int *has, double *out)
{
    if (obj == Py_None) {
        *has = 0;
        return 0;
    }
    double v = PyFloat_AsDouble(obj);
    if (v == -1.0 && PyErr_Occurred())
        return -1;
    *has = 1, *out = v;
    return 0;
}

static int Groups_init(Groups *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fields", "inv_log_gamma", "include_internal", "since", "until", "sample_text",
                             "day_offset", NULL};
    PyObject *fields, *since = Py_None, *until = Py_None, *sample_text = Py_None, *day_offset = Py_None;
    double inv;
    int include_internal = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!d|pOOOO:Groups", kwlist, &PyTuple_Type, &fields, &inv,
                                     &include_internal, &since, &until, &sample_text, &day_offset))
        return -1;
    self->has_day_offset = day_offset != Py_None;
    self->day_offset = 0;
    if (self->has_day_offset) {
        long long off = PyLong_AsLongLong(day_offset);
        if (off == -1 && PyErr_Occurred())
            return -1;
        if (off <= -86400 || off >= 86400) {
            PyErr_SetString(PyExc_ValueError, "day_offset must be strictly between -86400 and 86400 seconds");
            return -1;
        }
        self->day_offset = (int64_t)off;
    }
    if (PyTuple_GET_SIZE(fields) != NFIELDS) {
        PyErr_Format(PyExc_ValueError, "Groups needs %d field indexes", NFIELDS);
        return -1;
    }
    for (int k = 0; k < NFIELDS; k++)
        if (int_of(PyTuple_GET_ITEM(fields, k), &self->f[k], 0, MAX_GROUPS) < 0)
            return -1;
    if (opt_time(since, &self->has_since, &self->since) < 0 || opt_time(until, &self->has_until, &self->until) < 0)
        return -1;
    if (sample_text != Py_None && !PyCallable_Check(sample_text)) {
        PyErr_SetString(PyExc_TypeError, "sample_text must be callable or None");
        return -1;
    }
    Groups_clear_table(self);
    Py_XSETREF(self->sample_text, sample_text == Py_None ? NULL : Py_NewRef(sample_text));
    self->inv = inv;
    self->include_internal = include_internal;
    self->entries = self->skipped_internal = self->skipped_by_time = 0;
    return 0;
}

/* Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The date of a day number since 1970-01-01 (H. Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

/* ``datetime.fromtimestamp(when, timezone(timedelta(seconds=offset))).date().isoformat()`` into out[10]:
   CPython splits the double into whole seconds and microseconds rounded half-even (``_PyTime_ObjectToTimeval``
   with ``_PyTime_ROUND_HALF_EVEN``: modf, then the fraction times 1e6 rounded, carried into the seconds at
   1e6 or below 0), then adds the zone's offset. 0 when the date's year is outside 1-9999 (Python raises:
   the general parser decides), else 1. */
static int day_in_zone(double when, int64_t offset, char *out)
{
    if (!isfinite(when) || when > 1e15 || when < -1e15)
        return 0;
    double whole, frac = modf(when, &whole);
    volatile double us = frac * 1e6; /* volatile as in CPython: no fused or reordered rounding */
    double rounded = round(us);
    if (fabs(us - rounded) == 0.5)
        rounded = 2.0 * round(us / 2.0);
    if (rounded >= 1e6)
        whole += 1.0;
    else if (rounded < 0)
        whole -= 1.0;
    int64_t secs = (int64_t)whole + offset;
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t y, m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 1 || y > 9999)
        return 0;
    out[0] = (char)('0' + y / 1000), out[1] = (char)('0' + y / 100 % 10), out[2] = (char)('0' + y / 10 % 10);
    out[3] = (char)('0' + y % 10), out[4] = '-', out[5] = (char)('0' + m / 10), out[6] = (char)('0' + m % 10);
    out[7] = '-', out[8] = (char)('0' + d / 10), out[9] = (char)('0' + d % 10);
    return 1;
}

/* parser.parse_slow_log_time of a canonical time (date, tod and zone as the program captured them):
   (base + secs) - offset in doubles, base the exact epoch of the minute, secs the double nearest the
   decimal seconds (exact integer nanoseconds divided by 1e9: IEEE division rounds correctly). */
static double entry_time(Buf b, const Caps *caps, const int *f)
{
    Buf d = b + caps->at[f[F_DATE]], t = b + caps->at[f[F_TOD]], z = b + caps->at[f[F_ZONE]];
    int64_t y = two(d, 0) * 100 + two(d, 2), m = two(d, 5), day = two(d, 8);
    int64_t base = days_from_civil(y, m, day) * 86400 + (int64_t)two(t, 0) * 3600 + (int64_t)two(t, 3) * 60;
    int64_t ns = (int64_t)two(t, 6) * 1000000000;
    Py_ssize_t tl = caps->len[f[F_TOD]];
    if (tl > 9) {
        int64_t frac = 0, scale = 100000000;
        for (Py_ssize_t i = 9; i < tl; i++, scale /= 10)
            frac += (t[i] - '0') * scale;
        ns += frac;
    }
    int64_t offset = 0;
    if (caps->len[f[F_ZONE]] == 6) {
        offset = (int64_t)two(z, 1) * 3600 + (int64_t)two(z, 4) * 60;
        if (z[0] == '-')
            offset = -offset;
    }
    return ((double)base + (double)ns / 1e9) - (double)offset;
}

static inline int cap_is(Buf b, const Caps *caps, int g, const char *s, Py_ssize_t n)
{
    return caps->at[g] >= 0 && caps->len[g] == n && memcmp(b + caps->at[g], s, (size_t)n) == 0;
}

static inline Py_ssize_t cap_len(const Caps *caps, int g) { return caps->at[g] < 0 ? 0 : caps->len[g]; }

/* A hash of the key bytes, eight at a time (multiply and fold: enough for a table that compares keys). */
static inline uint64_t hash_key(const char *s, Py_ssize_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n, w;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    if (i < n) {
        w = 0;
        memcpy(&w, s + i, (size_t)(n - i));
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    }
    return h ^ (h >> 29);
}

/* The group of the entry's key (its date ``day``, 10 bytes, when not NULL, else the date as written),
   created when new; NULL with an exception set. */
static Group *group_of(Groups *self, Buf b, const Caps *caps, const char *day)
{
    static const int key_fields[KEY_FIELDS] = {F_DATE, F_DIGEST, F_PLAN, F_DB, F_USER};
    Py_ssize_t klen = 0;
    for (int k = 0; k < KEY_FIELDS; k++)
        klen += 4 + (k == 0 && day ? 10 : cap_len(caps, self->f[key_fields[k]]));
    if (klen > self->scap) {
        char *grown = PyMem_Realloc(self->scratch, (size_t)klen);
        if (!grown) {
            PyErr_NoMemory();
            return NULL;
        }
        self->scratch = grown, self->scap = klen;
    }
    char *w = self->scratch;
    for (int k = 0; k < KEY_FIELDS; k++) {
        int g = self->f[key_fields[k]];
        uint32_t n = (uint32_t)(k == 0 && day ? 10 : cap_len(caps, g));
        memcpy(w, &n, 4);
        if (n)
            memcpy(w + 4, k == 0 && day ? (const unsigned char *)day : b + caps->at[g], n);
        w += 4 + n;
    }
    uint64_t h = hash_key(self->scratch, klen);
    if (self->nslots) {
        for (Py_ssize_t s = (Py_ssize_t)(h & (uint64_t)(self->nslots - 1));; s = (s + 1) & (self->nslots - 1)) {
            Py_ssize_t i = self->slots[s];
            if (!i)
                break;
            Group *g = &self->groups[i - 1];
            if (g->hash == h && g->klen == klen && memcmp(g->key, self->scratch, (size_t)klen) == 0)
                return g;
        }
    }
    /* a new group: grow the table at half load, then insert */
    if ((self->ngroups + 1) * 2 > self->nslots) {
        Py_ssize_t n = self->nslots ? self->nslots * 2 : 256;
        Py_ssize_t *slots = PyMem_Calloc((size_t)n, sizeof(Py_ssize_t));
        if (!slots) {
            PyErr_NoMemory();
            return NULL;
        }
        for (Py_ssize_t i = 0; i < self->ngroups; i++) {
            Py_ssize_t s = (Py_ssize_t)(self->groups[i].hash & (uint64_t)(n - 1));
            while (slots[s])
                s = (s + 1) & (n - 1);
            slots[s] = i + 1;
        }
        PyMem_Free(self->slots);
        self->slots = slots, self->nslots = n;
    }
    if (self->ngroups == self->gcap) {
        Py_ssize_t n = self->gcap ? self->gcap * 2 : 64;
        Group *grown = PyMem_Realloc(self->groups, (size_t)n * sizeof(Group));
        if (!grown) {
            PyErr_NoMemory();
            return NULL;
        }
        self->groups = grown, self->gcap = n;
    }
    char *key = PyMem_Malloc((size_t)(klen ? klen : 1));
    if (!key) {
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(key, self->scratch, (size_t)klen);
    Group *g = &self->groups[self->ngroups];
    memset(g, 0, sizeof(Group));
    g->hash = h, g->key = key, g->klen = klen;
    g->top_ns = -1;
    g->first = Py_HUGE_VAL, g->last = -Py_HUGE_VAL;
    Py_ssize_t s = (Py_ssize_t)(h & (uint64_t)(self->nslots - 1));
    while (self->slots[s])
        s = (s + 1) & (self->nslots - 1);
    self->slots[s] = ++self->ngroups;
    return g;
}

static int count_bucket(Group *g, long bucket)
{
    if (!g->bn || bucket < g->blo || bucket >= g->blo + g->bn) {
        long lo = g->bn ? (bucket < g->blo ? bucket - 32 : g->blo) : bucket - 32;
        long hi = g->bn ? (bucket >= g->blo + g->bn ? bucket + 33 : g->blo + (long)g->bn) : bucket + 33;
        int64_t *counts = PyMem_Calloc((size_t)(hi - lo), sizeof(int64_t));
        if (!counts) {
            PyErr_NoMemory();
            return -1;
        }
        if (g->bn)
            memcpy(counts + (g->blo - lo), g->bcounts, (size_t)g->bn * sizeof(int64_t));
        PyMem_Free(g->bcounts);
        g->bcounts = counts, g->blo = lo, g->bn = hi - lo;
    }
    g->bcounts[bucket - g->blo]++;
    return 0;
}

/* sample_text(sql decoded as UTF-8 with replacement characters), as aggregate compares samples. */
static PyObject *sample_key(Groups *self, const char *s, Py_ssize_t n)
{
    PyObject *text = PyUnicode_DecodeUTF8(s, n, "replace");
    if (!text || !self->sample_text)
        return text;
    PyObject *out = PyObject_CallOneArg(self->sample_text, text);
    Py_DECREF(text);
    return out;
}

static int set_sample(Group *g, const char *s, Py_ssize_t n, double when, PyObject *key)
{
    char *copy = PyMem_Realloc(g->sample, (size_t)(n ? n : 1));
    if (!copy) {
        Py_XDECREF(key);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(copy, s, (size_t)n);
    g->sample = copy, g->sample_len = n, g->sample_when = when;
    Py_XSETREF(g->sample_key, key);
    return 0;
}

/* The sample order of DigestStats: slower wins, then earlier, then the smaller sample_text. */
static int offer_sample(Groups *self, Group *g, int64_t ns, double when, const char *s, Py_ssize_t n)
{
    if (ns < g->top_ns || (ns == g->top_ns && g->sample && when > g->sample_when))
        return 0;
    if (ns > g->top_ns || !g->sample || when < g->sample_when)
        return set_sample(g, s, n, when, NULL);
    /* a tie on time and moment: the texts decide */
    if (!g->sample_key && !(g->sample_key = sample_key(self, g->sample, g->sample_len)))
        return -1;
    PyObject *key = sample_key(self, s, n);
    if (!key)
        return -1;
    int less = PyObject_RichCompareBool(key, g->sample_key, Py_LT);
    if (less < 0) {
        Py_DECREF(key);
        return -1;
    }
    if (!less) {
        Py_DECREF(key);
        return 0;
    }
    return set_sample(g, s, n, when, key);
}

/* Add one canonical entry: 0; 1 when it is left to the general parser (its day in ``day_offset``'s zone is
   not a date Python has); -1 with an exception set. */
static int add_entry(Groups *self, Buf b, const Caps *caps)
{
    const int *f = self->f;
    char day[10];
    double when = entry_time(b, caps, f);
    if (self->has_day_offset && !day_in_zone(when, self->day_offset, day))
        return 1;
    self->entries++;
    if (!self->include_internal && cap_is(b, caps, f[F_INTERNAL], "true", 4)) {
        self->skipped_internal++;
        return 0;
    }
    if ((self->has_since && !(when >= self->since)) || (self->has_until && !(when < self->until))) {
        self->skipped_by_time++;
        return 0;
    }
    Group *g = group_of(self, b, caps, self->has_day_offset ? day : NULL);
    if (!g)
        return -1;
    int64_t ns = seconds_ns((const char *)b + caps->at[f[F_QT]], caps->len[f[F_QT]]);
    g->count++;
    add128(&g->qt, (uint64_t)ns);
    if (ns == 0) {
        g->zeros++;
    }
    else if (count_bucket(g, (long)ceil(log((double)ns / 1e9) * self->inv)) < 0) {
        return -1;
    }
    for (int k = 0; k < NSUMS; k++) {
        int field = f[F_PT + k];
        Py_ssize_t n = cap_len(caps, field);
        if (n)
            add128(&g->sums[k], (uint64_t)(k < 3 ? seconds_ns((const char *)b + caps->at[field], n)
                                                 : small_int((const char *)b + caps->at[field], n)));
    }
    Py_ssize_t n = cap_len(caps, f[F_MEM]);
    if (n) {
        int64_t mem = small_int((const char *)b + caps->at[f[F_MEM]], n);
        if (mem > g->mem_max)
            g->mem_max = mem;
    }
    if (cap_is(b, caps, f[F_SUCC], "false", 5))
        g->errors++;
    if (when < g->first)
        g->first = when;
    if (when > g->last)
        g->last = when;
    if (offer_sample(self, g, ns, when, (const char *)b + caps->at[f[F_SQL]], cap_len(caps, f[F_SQL])) < 0)
        return -1;
    if (ns > g->top_ns)
        g->top_ns = ns;
    return 0;
}

/* The row of the expression's second alternative at s: ``other`` is the text after "# Time: " up to and
   including the newline before the next "# Time: " line (or to the end); *next is where it ends. */
static PyObject *other_row(const Scanner *sc, int other, Buf b, Py_ssize_t s, Py_ssize_t end, Py_ssize_t *next)
{
    Py_ssize_t from = s + 8, stop = end;
    if (from < end) {
        const unsigned char *hit = find(b, from, end, "\n# Time: ", 9);
        if (hit)
            stop = (Py_ssize_t)(hit - b) + 1;
    }
    PyObject *row = PyTuple_New(sc->ngroups);
    if (!row)
        return NULL;
    for (int g = 0; g < sc->ngroups; g++) {
        PyObject *item = g == other ? PyBytes_FromStringAndSize((const char *)b + from, stop - from)
                                    : Py_NewRef(empty_bytes);
        if (!item) {
            Py_DECREF(row);
            return NULL;
        }
        PyTuple_SET_ITEM(row, g, item);
    }
    PyObject_GC_UnTrack(row);
    *next = stop;
    return row;
}

static PyObject *Groups_scan(Groups *self, PyObject *args)
{
    PyObject *scanner, *obj;
    Py_ssize_t start = 0, end = PY_SSIZE_T_MAX;
    if (!PyArg_ParseTuple(args, "O!O|nn:scan", &ScannerType, &scanner, &obj, &start, &end))
        return NULL;
    Scanner *sc = (Scanner *)scanner;
    if (!sc->steps) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner not initialised");
        return NULL;
    }
    for (int k = 0; k < NFIELDS; k++)
        if (self->f[k] >= sc->ngroups) {
            PyErr_SetString(PyExc_ValueError, "a field index is not a group of the scanner");
            return NULL;
        }
    Py_buffer view;
    if (get_span(obj, &view, &start, &end) < 0)
        return NULL;
    Buf b = view.buf;
    PyObject *others = PyList_New(0);
    if (!others)
        goto fail;
    Py_ssize_t pos = start, s;
    Caps caps;
    while (pos < end && (s = next_entry(b, pos, end)) >= 0) {
        clear_caps(&caps, sc->ngroups);
        Py_ssize_t e = match_canonical(sc, b, s, end, &caps);
        int taken = 0;
        if (e > s) {
            taken = add_entry(self, b, &caps);
            if (taken < 0)
                goto fail;
            taken = taken == 0;
        }
        if (!taken) {
            PyObject *row = other_row(sc, self->f[F_OTHER], b, s, end, &e);
            if (!row)
                goto fail;
            int failed = PyList_Append(others, row);
            Py_DECREF(row);
            if (failed < 0)
                goto fail;
        }
        pos = e;
    }
    PyBuffer_Release(&view);
    return others;
fail:
    Py_XDECREF(others);
    PyBuffer_Release(&view);
    return NULL;
}

static PyObject *key_part(const char **r)
{
    uint32_t n;
    memcpy(&n, *r, 4);
    PyObject *out = PyBytes_FromStringAndSize(*r + 4, n);
    *r += 4 + n;
    return out;
}

static PyObject *buckets_of(const Group *g)
{
    PyObject *d = PyDict_New();
    for (Py_ssize_t i = 0; d && i < g->bn; i++) {
        if (!g->bcounts[i])
            continue;
        PyObject *k = PyLong_FromLong(g->blo + (long)i), *v = PyLong_FromLongLong(g->bcounts[i]);
        if (!k || !v || PyDict_SetItem(d, k, v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(k);
        Py_XDECREF(v);
    }
    return d;
}

/* results() -> [(date, digest, plan, db, user, count, errors, query_time_ns, max_ns, {bucket: count}, zeros,
   (process_ns, wait_ns, backoff_ns), (process_keys, total_keys, result_rows), max_mem, first, last,
   sample_sql, sample_time)], in the order the groups were first met. */
static PyObject *Groups_results(Groups *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *out = PyList_New(self->ngroups);
    if (!out)
        return NULL;
    for (Py_ssize_t i = 0; i < self->ngroups; i++) {
        const Group *g = &self->groups[i];
        const char *r = g->key;
        PyObject *date = key_part(&r), *digest = key_part(&r), *plan = key_part(&r), *db = key_part(&r),
                 *user = key_part(&r);
        PyObject *item = NULL;
        if (date && digest && plan && db && user)
            item = Py_BuildValue(
                "(OOOOOLLNLNL(NNN)(NNN)Lddy#d)", date, digest, plan, db, user, (long long)g->count,
                (long long)g->errors, long_of(g->qt), (long long)g->top_ns, buckets_of(g), (long long)g->zeros,
                long_of(g->sums[0]), long_of(g->sums[1]), long_of(g->sums[2]), long_of(g->sums[3]),
                long_of(g->sums[4]), long_of(g->sums[5]), (long long)g->mem_max, g->first, g->last,
                g->sample ? g->sample : "", g->sample_len, g->sample_when);
        Py_XDECREF(date);
        Py_XDECREF(digest);
        Py_XDECREF(plan);
        Py_XDECREF(db);
        Py_XDECREF(user);
        if (!item) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, item);
    }
    return out;
}

static PyObject *Groups_counts(Groups *self, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(LLL)", self->entries, self->skipped_internal, self->skipped_by_time);
}

static PyMethodDef Groups_methods[] = {
    {"scan", (PyCFunction)Groups_scan, METH_VARARGS,
     "scan(scanner, buf, start=0, end=sys.maxsize) -> rows of the entries the program does not take"},
    {"results", (PyCFunction)Groups_results, METH_NOARGS, "results() -> one tuple per group"},
    {"counts", (PyCFunction)Groups_counts, METH_NOARGS,
     "counts() -> (canonical entries, internal ones skipped, ones outside the time window)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject GroupsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tidbops.slowlog._scan.Groups",
    .tp_basicsize = sizeof(Groups),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Groups(fields, inv_log_gamma, include_internal=False, since=None, until=None, sample_text=None, "
              "day_offset=None): "
              "daily aggregates folded from canonical entries",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Groups_init,
    .tp_dealloc = (destructor)Groups_dealloc,
    .tp_methods = Groups_methods,
};

static PyMethodDef module_methods[] = {
    {"fold", fold, METH_VARARGS,
     "fold(rows, qt, ns_fields, int_fields, mem, inv_log_gamma) -> tuple | None: the numeric columns of rows"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef scanmodule = {
    PyModuleDef_HEAD_INIT, .m_name = "tidbops.slowlog._scan",
    .m_doc = "ENTRY_RE.findall in C for canonical TiDB slow-log entries (see parser.py), the column fold of\n"
             "their numbers, and the group fold that aggregates them straight from the buffer (see aggregate.py).",
    .m_size = -1, .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__scan(void)
{
    if (PyType_Ready(&ScannerType) < 0 || PyType_Ready(&GroupsType) < 0)
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
    Py_INCREF(&GroupsType);
    if (PyModule_AddObject(m, "Groups", (PyObject *)&GroupsType) < 0) {
        Py_DECREF(&GroupsType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
