/* rewind.accelerator._speedups: the per-line hot path of rewind's recorder in C.
 *
 * It does exactly what Recorder.line + Recorder._snapshot + Recorder._values do in
 * src/rewind/recorder.py (the reference: this file must write byte-identical traces), and,
 * for sys.monitoring, what the LINE callback `on_line` in hooks/monitoring.py does.  Only
 * the two common cases of a variable are handled here (an unchanged immutable value: its
 * cached text; an int64 `int`: its Int text); every other one goes through the Python
 * `Recorder._value_miss`, and so does everything that is rare (first step of a line,
 * thread switches, IO flushes, forgetting gone names).
 *
 * Only documented CPython API is used (no frame internals): f_locals and f_globals through
 * PyFrame_GetLocals / PyFrame_GetGlobals (by name on 3.10), the recorder's objects as
 * attributes (the slots of its own classes through their member descriptors), so this
 * builds and runs on 3.10 to 3.13+.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <string.h>

#include "headroom.h"
#include <frameobject.h>  /* PyFrame_Check, PyFrame_GetLineNumber (3.10: not in Python.h) */

/* The CRC-32 of this file as built (setup.py): SOURCE_CRC, checked by accelerator._load. */
#ifndef REWIND_SOURCE_CRC
#define REWIND_SOURCE_CRC 0UL
#endif

/* Interned attribute names, created once at module init. */
static PyObject *s_info, *s_step_texts, *s_last_line, *s_io_pending, *s_io_flush, *s_frame,
    *s_attr_decision, *s_decision, *s_is_module, *s_f_locals, *s_f_globals, *s_global_entries,
    *s_local_entries, *s_global_names, *s_cache, *s_items, *s_value_miss, *s_forget_gone_names,
    *s_encoder, *s_int_value_suffix, *s_current_ts, *s_switch_text,
    *s_buffer, *s_flush, *s_global, *s_state, *s_stack, *s_code, *s_empty_str, *s_arg_names, *s_variables,
    *s_redacted_text, *s_dropped_text, *s_redactions, *s_drops, *s_call_step, *s_function_id,
    *s_ret_mode, *s_arg, *s_ret, *s_exception, *s_exception_lasti, *s_resume_pending, *s_in_repr, *s_traced,
    *s_enter, *s_leave, *s_code_infos, *s_tls, *s_line_event, *s_return_event, *s_call_event;
static PyObject *empty_tuple, *minus_one, *minus_two;

/* Variable-entry modes (recorder.py ALLOW, REDACT, DROP, HIDDEN). */
enum { MODE_ALLOW = 0, MODE_REDACT = 1, MODE_DROP = 2, MODE_HIDDEN = 3 };

static const char INT_MIDDLE[] = "{\"kind\":\"Int\",\"i\":";

/* ---------------------------------------------------------------------------------------- */
/* The slots of recorder.py's ActiveFrame, CodeInfo and ThreadState, read and set at their   */
/* offsets, as their member descriptors do (the class's tp_members gives them), instead of a */
/* by-name attribute lookup: these are the most frequent reads of the hot path.  An object   */
/* that is not exactly one of those classes (or before Core has been given them), or a slot  */
/* not set yet, goes by name, as before.                                                     */

#ifndef Py_T_OBJECT_EX  /* before 3.12 */
#include "structmember.h"
#define Py_T_OBJECT_EX T_OBJECT_EX
#define Py_READONLY READONLY
#endif

enum { K_ACTIVE, K_INFO, K_THREAD, K_COUNT };
enum {
    SL_A_INFO, SL_A_FRAME, SL_A_LAST_LINE, SL_A_CACHE, SL_A_EXCEPTION, SL_A_EXCEPTION_LASTI, SL_A_RESUME_PENDING,
    SL_I_CODE, SL_I_TRACED, SL_I_DECISION, SL_I_IS_MODULE, SL_I_LOCAL_ENTRIES, SL_I_GLOBAL_ENTRIES,
    SL_I_GLOBAL_NAMES, SL_I_STEP_TEXTS, SL_I_ARG_NAMES, SL_I_CALL_STEP, SL_I_FUNCTION_ID, SL_I_RET_MODE,
    SL_T_STACK, SL_COUNT
};
static const struct { int owner; PyObject **name; } SLOTS[SL_COUNT] = {
    [SL_A_INFO] = {K_ACTIVE, &s_info}, [SL_A_FRAME] = {K_ACTIVE, &s_frame},
    [SL_A_LAST_LINE] = {K_ACTIVE, &s_last_line}, [SL_A_CACHE] = {K_ACTIVE, &s_cache},
    [SL_A_EXCEPTION] = {K_ACTIVE, &s_exception}, [SL_A_EXCEPTION_LASTI] = {K_ACTIVE, &s_exception_lasti},
    [SL_A_RESUME_PENDING] = {K_ACTIVE, &s_resume_pending},
    [SL_I_CODE] = {K_INFO, &s_code}, [SL_I_TRACED] = {K_INFO, &s_traced}, [SL_I_DECISION] = {K_INFO, &s_decision},
    [SL_I_IS_MODULE] = {K_INFO, &s_is_module}, [SL_I_LOCAL_ENTRIES] = {K_INFO, &s_local_entries},
    [SL_I_GLOBAL_ENTRIES] = {K_INFO, &s_global_entries}, [SL_I_GLOBAL_NAMES] = {K_INFO, &s_global_names},
    [SL_I_STEP_TEXTS] = {K_INFO, &s_step_texts}, [SL_I_ARG_NAMES] = {K_INFO, &s_arg_names},
    [SL_I_CALL_STEP] = {K_INFO, &s_call_step}, [SL_I_FUNCTION_ID] = {K_INFO, &s_function_id},
    [SL_I_RET_MODE] = {K_INFO, &s_ret_mode},
    [SL_T_STACK] = {K_THREAD, &s_stack},
};
static PyTypeObject *slot_class[K_COUNT];
static Py_ssize_t slot_offset[SL_COUNT];  /* 0: not known, go by name */

#define SLOT_AT(obj, slot) (*(PyObject **)((char *)(obj) + slot_offset[slot]))

/* obj.<slot> (new reference). */
static inline PyObject *
sget(PyObject *obj, int slot)
{
    if (slot_offset[slot] > 0 && Py_TYPE(obj) == slot_class[SLOTS[slot].owner]) {
        PyObject *value = SLOT_AT(obj, slot);
        if (value != NULL)
            return Py_NewRef(value);
    }
    return PyObject_GetAttr(obj, *SLOTS[slot].name);  /* (an unset slot: its AttributeError) */
}

/* obj.<slot> = value. */
static inline int
sset(PyObject *obj, int slot, PyObject *value)
{
    if (value != NULL && slot_offset[slot] > 0 && Py_TYPE(obj) == slot_class[SLOTS[slot].owner]) {
        PyObject *old = SLOT_AT(obj, slot);
        SLOT_AT(obj, slot) = Py_NewRef(value);
        Py_XDECREF(old);
        return 0;
    }
    return PyObject_SetAttr(obj, *SLOTS[slot].name, value);
}

/* frame.f_locals / frame.f_globals (new references): PyFrame_GetLocals / PyFrame_GetGlobals
 * where they exist (3.11+), by name otherwise. */
static PyObject *
frame_locals(PyObject *frame)
{
#if PY_VERSION_HEX >= 0x030B0000
    if (PyFrame_Check(frame))
        return PyFrame_GetLocals((PyFrameObject *)frame);
#endif
    return PyObject_GetAttr(frame, s_f_locals);
}

static PyObject *
frame_globals(PyObject *frame)
{
#if PY_VERSION_HEX >= 0x030B0000
    if (PyFrame_Check(frame))
        return PyFrame_GetGlobals((PyFrameObject *)frame);
#endif
    return PyObject_GetAttr(frame, s_f_globals);
}

/* Takes the member descriptors of the three classes (each must be a class whose slot of that
 * name is a member descriptor of its own; anything else keeps the by-name lookups). */
static int
configure_slots(PyObject *classes[K_COUNT])
{
    Py_ssize_t offsets[SL_COUNT] = {0};
    for (int k = 0; k < K_COUNT; k++) {
        if (classes[k] == NULL || !PyType_Check(classes[k]))
            return 0;
    }
    for (int i = 0; i < SL_COUNT; i++) {
        PyTypeObject *owner = (PyTypeObject *)classes[SLOTS[i].owner];
        const char *name = PyUnicode_AsUTF8(*SLOTS[i].name);
        if (name == NULL)
            return -1;
        /* A __slots__ entry: a writable object member of the class itself. */
        for (PyMemberDef *m = owner->tp_members; m != NULL && m->name != NULL; m++) {
            if (strcmp(m->name, name) == 0 && m->type == Py_T_OBJECT_EX && !(m->flags & Py_READONLY)
                    && m->offset > 0) {
                offsets[i] = m->offset;
                break;
            }
        }
        if (offsets[i] == 0)
            return 0;  /* not a slot of that class: every slot goes by name */
    }
    /* Kept for the process's life: Core objects made later share them. */
    for (int i = 0; i < SL_COUNT; i++)
        slot_offset[i] = offsets[i];
    for (int k = 0; k < K_COUNT; k++)
        Py_XSETREF(slot_class[k], (PyTypeObject *)Py_NewRef(classes[k]));
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* RecorderLock: the recorder's re-entrant lock, taken around every event.                  */
/*                                                                                          */
/* threading.RLock works, but the Core takes it twice per event (around line, enter and      */
/* leave), and each of its acquire() calls parses its arguments and reads the clock.  This   */
/* lock has RLock's semantics (an owner thread and a count; other threads wait without the   */
/* GIL, and a signal handler can interrupt their wait), and an uncontended take or give is   */
/* a few C assignments: its state (count, owner) is only read and written with the GIL held. */
/* A thread that finds it held waits on `wakeup`, an OS lock used as a binary semaphore: the  */
/* last give posts it when someone waits, and the waiter, back with the GIL, takes the lock  */
/* if it is free or waits again.  Python code uses it as the RLock: acquire(), release(),    */
/* `with`.                                                                                  */

typedef struct {
    PyObject_HEAD
    unsigned long owner;   /* the holder's thread ident, meaningful while count > 0 */
    unsigned long count;   /* how many times the holder has taken it; 0: free */
    PyThread_type_lock wakeup; /* acquired while no wake-up is pending */
    int waiters;           /* threads waiting on `wakeup` */
    int posted;            /* `wakeup` was released and no waiter has taken it yet */
} RecorderLockObject;

static PyTypeObject RecorderLockType;

static int
rlock_take(RecorderLockObject *self)
{
    unsigned long me = PyThread_get_thread_ident();
    if (self->count == 0) {
        self->owner = me;
        self->count = 1;
        return 0;
    }
    if (self->owner == me) {
        self->count++;
        return 0;
    }
    /* Another thread holds it (it is between its take and its give, and gave up the GIL in
     * the middle, e.g. in the encoder's Python code): wait for its give. */
    self->waiters++;
    for (;;) {
        PyLockStatus status;
        Py_BEGIN_ALLOW_THREADS
        status = PyThread_acquire_lock_timed(self->wakeup, -1, 1);
        Py_END_ALLOW_THREADS
        if (status == PY_LOCK_ACQUIRED)
            self->posted = 0;
        else if (PyErr_CheckSignals() < 0) {
            self->waiters--;
            return -1;
        }
        if (self->count == 0) {
            self->waiters--;
            self->owner = me;
            self->count = 1;
            return 0;
        }
    }
}

static int
rlock_give(RecorderLockObject *self)
{
    if (self->count == 0 || self->owner != PyThread_get_thread_ident()) {
        PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
        return -1;
    }
    if (--self->count == 0 && self->waiters > 0 && !self->posted) {
        self->posted = 1;
        PyThread_release_lock(self->wakeup);
    }
    return 0;
}

static PyObject *
rlock_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_SetString(PyExc_TypeError, "RecorderLock() takes no arguments");
        return NULL;
    }
    RecorderLockObject *self = (RecorderLockObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->wakeup = PyThread_allocate_lock();
    if (self->wakeup == NULL) {
        Py_DECREF(self);
        PyErr_SetString(PyExc_MemoryError, "cannot allocate a lock");
        return NULL;
    }
    PyThread_acquire_lock(self->wakeup, WAIT_LOCK);  /* no wake-up pending */
    return (PyObject *)self;
}

static void
rlock_dealloc(RecorderLockObject *self)
{
    if (self->wakeup != NULL) {
        if (!self->posted)
            PyThread_release_lock(self->wakeup);
        PyThread_free_lock(self->wakeup);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
rlock_acquire(RecorderLockObject *self, PyObject *unused)
{
    (void)unused;
    if (rlock_take(self) < 0)
        return NULL;
    Py_RETURN_TRUE;
}

static PyObject *
rlock_release(RecorderLockObject *self, PyObject *unused)
{
    (void)unused;
    if (rlock_give(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
rlock_is_owned(RecorderLockObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(self->count > 0 && self->owner == PyThread_get_thread_ident());
}

static PyMethodDef rlock_methods[] = {
    {"acquire", (PyCFunction)rlock_acquire, METH_NOARGS,
     PyDoc_STR("acquire() -> True: take the lock, waiting for another thread that holds it.")},
    {"release", (PyCFunction)rlock_release, METH_NOARGS,
     PyDoc_STR("release(): give back one acquire(); RuntimeError if this thread does not hold it.")},
    {"__enter__", (PyCFunction)rlock_acquire, METH_NOARGS, PyDoc_STR("acquire()")},
    /* __exit__(type, value, tb): release() ignores them, and its None does not swallow an exception. */
    {"__exit__", (PyCFunction)rlock_release, METH_VARARGS, PyDoc_STR("release()")},
    {"_is_owned", (PyCFunction)rlock_is_owned, METH_NOARGS,
     PyDoc_STR("_is_owned() -> bool: whether this thread holds the lock.")},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RecorderLockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rewind.accelerator._speedups.RecorderLock",
    .tp_doc = PyDoc_STR("RecorderLock(): a re-entrant lock, as threading.RLock, that the Core takes "
                         "without a Python call."),
    .tp_basicsize = sizeof(RecorderLockObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = rlock_new,
    .tp_dealloc = (destructor)rlock_dealloc,
    .tp_methods = rlock_methods,
};

/* ---------------------------------------------------------------------------------------- */
/* Core: one per Recorder.                                                                   */

typedef struct {
    PyObject_HEAD
    PyObject *recorder;
    PyObject *rdict;      /* recorder.__dict__: its plain attributes, read and set directly */
    RecorderLockObject *lock; /* recorder.lock */
    PyObject *py_line;    /* the Python Recorder.line (unbound): the rare cases */
    PyObject *empty;      /* recorder.EMPTY, the "reuse on identity" marker */
    PyObject *node_check; /* the encoder's node check (_nodes.unchanged), or NULL */
    PyObject *py_enter;   /* the Python Recorder.enter / Recorder.leave (unbound): the rare cases */
    PyObject *py_leave;
    PyObject *active_frame; /* the ActiveFrame class */
    PyObject *none_text;  /* the encoder's text of None (encoder.NONE_TEXT) */
    PyObject *hidden_global_types; /* recorder.HIDDEN_GLOBAL_TYPES (a frozenset), or NULL */
    /* The encoder's texts of the other scalars, read from it on first use (scalars_loaded):
     * its _float_suffix, _str_suffix, _true, _false, max_string, and encoder._escape. */
    int scalars_loaded;
    PyObject *float_suffix, *str_suffix, *true_text, *false_text, *escape;
    PyObject *int_suffix; /* the encoder's int_value_suffix, read on first use (load_int_suffix) */
    Py_ssize_t max_string, max_depth, max_items;
    /* The type id of `tuple`, once the encoder has interned it (tuple_tid_known). */
    int tuple_tid_known;
    long long tuple_tid;
    Py_ssize_t flush_every;
    Py_ssize_t large_fragment;
    /* Characters this core appended to the buffer since it last flushed it, and the bound
     * (Recorder.FLUSH_CHARS).  A flush by Python code does not reset the count: the next
     * flush here only comes sooner. */
    Py_ssize_t buffered_chars;
    Py_ssize_t flush_chars;
    /* The events this core wrote itself (Recorder.counts() adds them to its own counters):
     * C integers instead of four recorder attributes updated at every event. */
    Py_ssize_t steps, values, calls, returns;
} CoreObject;

static PyTypeObject CoreType;

static PyObject *lock_release(CoreObject *self, PyObject *result);

/* A plain attribute of the recorder (new reference): its instance dict first. */
static PyObject *
rget(CoreObject *self, PyObject *name)
{
    PyObject *value = PyDict_GetItemWithError(self->rdict, name);
    if (value != NULL) {
        Py_INCREF(value);
        return value;
    }
    if (PyErr_Occurred())
        return NULL;
    return PyObject_GetAttr(self->recorder, name);
}

static int
rset(CoreObject *self, PyObject *name, PyObject *value)
{
    return PyDict_SetItem(self->rdict, name, value);
}

/* The decimal text of v (what int.__repr__ gives) into buf, which holds at least 21 bytes;
 * returns its length.  (snprintf's format parsing cost fib's recording 6% of its CPU.) */
static int
decimal(char *buf, long long v)
{
    char reversed[20];
    int n = 0, len = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        reversed[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u != 0);
    if (v < 0)
        buf[len++] = '-';
    while (n > 0)
        buf[len++] = reversed[--n];
    return len;
}

/* head + a + b + tail (new reference), head and tail ASCII C strings: copied directly when
 * a and b are ASCII too. */
static PyObject *
concat(const char *head, PyObject *a, PyObject *b, const char *tail)
{
    if (!PyUnicode_Check(a) || !PyUnicode_Check(b)) {
        PyErr_SetString(PyExc_TypeError, "the parts of an event text must be str");
        return NULL;
    }
    if (PyUnicode_KIND(a) == PyUnicode_1BYTE_KIND && PyUnicode_MAX_CHAR_VALUE(a) < 128
            && PyUnicode_KIND(b) == PyUnicode_1BYTE_KIND && PyUnicode_MAX_CHAR_VALUE(b) < 128) {
        Py_ssize_t nh = (Py_ssize_t)strlen(head), na = PyUnicode_GET_LENGTH(a), nb = PyUnicode_GET_LENGTH(b),
                   nt = (Py_ssize_t)strlen(tail);
        PyObject *text = PyUnicode_New(nh + na + nb + nt, 127);
        if (text == NULL)
            return NULL;
        Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
        memcpy(out, head, nh);
        memcpy(out + nh, PyUnicode_1BYTE_DATA(a), na);
        memcpy(out + nh + na, PyUnicode_1BYTE_DATA(b), nb);
        memcpy(out + nh + na + nb, tail, nt);
        return text;
    }
    return PyUnicode_FromFormat("%s%U%U%s", head, a, b, tail);
}

/* The Value text of an int64: entry[1] + '{"kind":"Int","i":' + repr + suffix. */
static PyObject *
int_text(PyObject *prefix, long long v, PyObject *suffix)
{
    char digits[32];
    int nd = decimal(digits, v);
    if (PyUnicode_KIND(prefix) == PyUnicode_1BYTE_KIND && PyUnicode_MAX_CHAR_VALUE(prefix) < 128
            && PyUnicode_KIND(suffix) == PyUnicode_1BYTE_KIND && PyUnicode_MAX_CHAR_VALUE(suffix) < 128) {
        Py_ssize_t np = PyUnicode_GET_LENGTH(prefix), ns = PyUnicode_GET_LENGTH(suffix);
        Py_ssize_t nm = (Py_ssize_t)(sizeof(INT_MIDDLE) - 1);
        PyObject *text = PyUnicode_New(np + nm + nd + ns, 127);
        if (text == NULL)
            return NULL;
        Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
        memcpy(out, PyUnicode_1BYTE_DATA(prefix), np);
        memcpy(out + np, INT_MIDDLE, nm);
        memcpy(out + np + nm, digits, nd);
        memcpy(out + np + nm + nd, PyUnicode_1BYTE_DATA(suffix), ns);
        return text;
    }
    return PyUnicode_FromFormat("%U%s%s%U", prefix, INT_MIDDLE, digits, suffix);
}

static int
load_scalars(CoreObject *self)
{
    PyObject *encoder = rget(self, s_encoder);
    if (encoder == NULL)
        return -1;
    PyObject *module = PyImport_ImportModule("rewind.encoder");
    PyObject *max_string = PyObject_GetAttrString(encoder, "max_string");
    PyObject *max_depth = PyObject_GetAttrString(encoder, "max_depth");
    PyObject *max_items = PyObject_GetAttrString(encoder, "max_items");
    self->float_suffix = PyObject_GetAttrString(encoder, "_float_suffix");
    self->str_suffix = PyObject_GetAttrString(encoder, "_str_suffix");
    self->true_text = PyObject_GetAttrString(encoder, "_true");
    self->false_text = PyObject_GetAttrString(encoder, "_false");
    self->escape = module == NULL ? NULL : PyObject_GetAttrString(module, "_escape");
    Py_DECREF(encoder);
    Py_XDECREF(module);
    if (max_string == NULL || max_depth == NULL || max_items == NULL || !self->float_suffix || !self->str_suffix
            || !self->true_text || !self->false_text || !self->escape) {
        Py_XDECREF(max_string);
        Py_XDECREF(max_depth);
        Py_XDECREF(max_items);
        return -1;
    }
    self->max_string = PyLong_AsSsize_t(max_string);
    self->max_depth = PyLong_AsSsize_t(max_depth);
    self->max_items = PyLong_AsSsize_t(max_items);
    Py_DECREF(max_string);
    Py_DECREF(max_depth);
    Py_DECREF(max_items);
    if (PyErr_Occurred())
        return -1;
    if (!PyUnicode_CheckExact(self->float_suffix) || !PyUnicode_CheckExact(self->str_suffix)
            || !PyUnicode_CheckExact(self->true_text) || !PyUnicode_CheckExact(self->false_text)) {
        PyErr_SetString(PyExc_TypeError, "the encoder's scalar texts must be str");
        return -1;
    }
    self->scalars_loaded = 1;
    return 0;
}

/* The Value body of a float, str, bool or None exactly as the encoder writes it (_float,
 * _str, _bool, _none), as a new reference; NULL without an error when the value is not one
 * of those (or a str past max_string, which is truncated in Python). */
static PyObject *
scalar_body(CoreObject *self, PyObject *value)
{
    if (value == Py_None) {
        Py_INCREF(self->none_text);
        return self->none_text;
    }
    if (value == Py_True || value == Py_False) {
        PyObject *text = value == Py_True ? self->true_text : self->false_text;
        Py_INCREF(text);
        return text;
    }
    if (PyFloat_CheckExact(value)) {
        PyObject *repr = PyObject_Repr(value);  /* float.__repr__: inf, nan, -0.0, 1e+300 */
        if (repr == NULL)
            return NULL;
        PyObject *body = concat("{\"kind\":\"Float\",\"f\":\"", repr, self->float_suffix, "");
        Py_DECREF(repr);
        return body;
    }
    if (PyUnicode_CheckExact(value) && PyUnicode_GET_LENGTH(value) <= self->max_string) {
        PyObject *escaped = PyObject_CallOneArg(self->escape, value);
        if (escaped == NULL)
            return NULL;
        PyObject *body = concat("{\"kind\":\"String\",\"text\":", escaped, self->str_suffix, "");
        Py_DECREF(escaped);
        return body;
    }
    return NULL;
}

/* Recorder._values over one (name, value) pair; adds to *kept.  *suffix is the encoder's
 * int_value_suffix, read on first use. */
static PyObject *tuple_body(CoreObject *self, PyObject *value, PyObject *int_suffix);
static int is_ascii(PyObject *text);
static int as_int64(PyObject *value, long long *out);

/* type(value) in HIDDEN_GLOBAL_TYPES: 1, 0, or -1 on error. */
static inline int
hidden_global(CoreObject *self, PyObject *value)
{
    if (self->hidden_global_types == NULL)
        return 0;
    return PySet_Contains(self->hidden_global_types, (PyObject *)Py_TYPE(value));
}

/* The variable's entry when it is shown as is (ALLOW, its Value prefix a str): a borrowed
 * reference, or NULL (an error set when the lookup failed). */
static PyObject *
allowed_entry(PyObject *entries, PyObject *name)
{
    PyObject *entry = PyDict_GetItemWithError(entries, name);
    if (entry != NULL && PyTuple_CheckExact(entry) && PyTuple_GET_SIZE(entry) >= 2
            && PyLong_CheckExact(PyTuple_GET_ITEM(entry, 0))
            && PyLong_AsLong(PyTuple_GET_ITEM(entry, 0)) == 0 /* ALLOW */
            && PyUnicode_CheckExact(PyTuple_GET_ITEM(entry, 1)))
        return entry;
    return NULL;
}

/* The encoder's int_value_suffix into *suffix (a new reference).  It is fixed when the
 * encoder is made, so the core reads it once. */
static int
load_int_suffix(CoreObject *self, PyObject **suffix)
{
    if (*suffix != NULL)
        return 0;
    if (self->int_suffix == NULL) {
        PyObject *encoder = rget(self, s_encoder);
        if (encoder == NULL)
            return -1;
        PyObject *text = PyObject_GetAttr(encoder, s_int_value_suffix);
        Py_DECREF(encoder);
        if (text == NULL)
            return -1;
        if (!PyUnicode_CheckExact(text)) {
            Py_DECREF(text);
            PyErr_SetString(PyExc_TypeError, "encoder.int_value_suffix must be a str");
            return -1;
        }
        self->int_suffix = text;
    }
    *suffix = Py_NewRef(self->int_suffix);
    return 0;
}

/* cache[name] = (value, text, EMPTY) and text appended to parts; takes `text` (NULL: the
 * error of making it).  Returns 0 or -1. */
static int
keep_text(CoreObject *self, PyObject *cache, PyObject *name, PyObject *value, PyObject *text, PyObject *parts,
          Py_ssize_t *kept)
{
    if (text == NULL)
        return -1;
    PyObject *item = PyTuple_Pack(3, value, text, self->empty);
    int rc = item == NULL ? -1 : PyDict_SetItem(cache, name, item);
    Py_XDECREF(item);
    if (rc == 0)
        rc = PyList_Append(parts, text);
    Py_DECREF(text);
    if (rc < 0)
        return -1;
    *kept += 1;
    return 0;
}

/* The rest of Recorder._values for one pair: hidden globals, then Recorder._value_miss. */
static int
value_miss(CoreObject *self, PyObject *info, PyObject *entries, PyObject *name, PyObject *value, PyObject *kind,
           PyObject *cached, PyObject *cache, PyObject *parts, Py_ssize_t *kept)
{
    /* A global import, function or class: not shown (the first test of _value_miss). */
    if (kind != Py_None) {
        int hidden = hidden_global(self, value);
        if (hidden != 0)
            return hidden < 0 ? -1 : 0;
    }
    /* Everything else: Recorder._value_miss(info, entries, name, value, kind, cached, cache, parts).
     * It runs Python code, so hold `cached` across the call. */
    PyObject *cached_arg = cached != NULL ? cached : Py_None;
    Py_INCREF(cached_arg);
    PyObject *args[9] = {self->recorder, info, entries, name, value, kind, cached_arg, cache, parts};
    PyObject *result = headroom_call_method(s_value_miss, args, 9 | PY_VECTORCALL_ARGUMENTS_OFFSET);
    Py_DECREF(cached_arg);
    if (result == NULL)
        return -1;
    Py_ssize_t n = PyLong_AsSsize_t(result);
    Py_DECREF(result);
    if (n == -1 && PyErr_Occurred())
        return -1;
    *kept += n;
    return 0;
}

static int
value_one(CoreObject *self, PyObject *info, PyObject *entries, PyObject *name, PyObject *value,
          PyObject *kind, PyObject *cache, PyObject *parts, PyObject **suffix, Py_ssize_t *kept)
{
    PyObject *cached = PyDict_GetItemWithError(cache, name);
    if (cached == NULL && PyErr_Occurred())
        return -1;
    if (cached != NULL && PyTuple_CheckExact(cached) && PyTuple_GET_SIZE(cached) >= 3
            && PyTuple_GET_ITEM(cached, 0) == value) {
        PyObject *dep = PyTuple_GET_ITEM(cached, 2);
        if (dep == self->empty) {
            /* The same immutable value as at the last step. */
            if (PyList_Append(parts, PyTuple_GET_ITEM(cached, 1)) < 0)
                return -1;
            *kept += 1;
            return 0;
        }
        if (dep != Py_None && self->node_check != NULL) {
            /* The same container or object, and nothing in it changed (Recorder._value_miss
             * checks the same first).  The check may run Python code: hold `cached`. */
            Py_INCREF(cached);
            PyObject *same = PyObject_CallOneArg(self->node_check, dep);
            int rc = same == NULL ? -1 : 0;
            if (same == Py_True)
                rc = PyList_Append(parts, PyTuple_GET_ITEM(cached, 1)) < 0 ? -1 : 1;
            Py_XDECREF(same);
            Py_DECREF(cached);
            if (rc < 0)
                return -1;
            if (rc == 1) {
                *kept += 1;
                return 0;
            }
        }
    }
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (!overflow) {
            PyObject *entry = allowed_entry(entries, name);
            if (entry == NULL)
                return PyErr_Occurred() ? -1 : value_miss(self, info, entries, name, value, kind, cached, cache,
                                                          parts, kept);
            if (load_int_suffix(self, suffix) < 0)
                return -1;
            return keep_text(self, cache, name, value, int_text(PyTuple_GET_ITEM(entry, 1), v, *suffix), parts, kept);
        }
    }
    /* A float, str, bool or None shown as is, or a new tuple of those: the text _value_miss
     * would write, cached on identity (EMPTY) the same way. */
    int is_scalar = value == Py_None || PyBool_Check(value) || PyFloat_CheckExact(value) || PyUnicode_CheckExact(value);
    if (is_scalar || PyTuple_CheckExact(value)) {
        PyObject *entry = allowed_entry(entries, name);
        if (entry == NULL && PyErr_Occurred())
            return -1;
        if (entry != NULL) {
            if ((!self->scalars_loaded && load_scalars(self) < 0) || (!is_scalar && load_int_suffix(self, suffix) < 0))
                return -1;
            Py_INCREF(entry);  /* the bodies run C code only, but keep the borrowed entry safe anyway */
            PyObject *body = is_scalar ? scalar_body(self, value) : tuple_body(self, value, *suffix);
            if (body != NULL) {
                PyObject *text = concat("", PyTuple_GET_ITEM(entry, 1), body, "}}");
                Py_DECREF(body);
                Py_DECREF(entry);
                return keep_text(self, cache, name, value, text, parts, kept);
            }
            Py_DECREF(entry);
            if (PyErr_Occurred())
                return -1;
        }
    }
    return value_miss(self, info, entries, name, value, kind, cached, cache, parts, kept);
}

/* Recorder._values: `source` is a mapping whose items() are the pairs (f_locals), or, when
 * `is_pairs` is set, a list of (name, value) tuples.  Returns 0 or -1. */
static int
values(CoreObject *self, PyObject *info, PyObject *entries, PyObject *source, int is_pairs, PyObject *kind,
       PyObject *active, PyObject *parts, PyObject **suffix, Py_ssize_t *kept)
{
    PyObject *cache = sget(active, SL_A_CACHE);
    if (cache == NULL)
        return -1;
    if (!PyDict_Check(cache) || !PyDict_Check(entries)) {
        Py_DECREF(cache);
        PyErr_SetString(PyExc_TypeError, "the frame cache and the entries must be dicts");
        return -1;
    }
    int rc = 0;
    if (!is_pairs && PyDict_Check(source)) {
        /* A dict (f_locals before 3.13, module globals): walk it in place, as dict.items()
         * does, and fail like it when the dict changes size under us. */
        Py_ssize_t pos = 0, size = PyDict_Size(source);
        PyObject *name, *value;
        while (PyDict_Next(source, &pos, &name, &value)) {
            Py_INCREF(name);
            Py_INCREF(value);
            rc = value_one(self, info, entries, name, value, kind, cache, parts, suffix, kept);
            Py_DECREF(name);
            Py_DECREF(value);
            if (rc < 0)
                break;
            if (PyDict_Size(source) != size) {
                PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
                rc = -1;
                break;
            }
        }
    }
    else {
        /* A list of pairs, or 3.13's FrameLocalsProxy: iterate its items() like Python does. */
        PyObject *iterable = is_pairs ? (Py_INCREF(source), source) : PyObject_CallMethodNoArgs(source, s_items);
        PyObject *it = iterable == NULL ? NULL : PyObject_GetIter(iterable);
        Py_XDECREF(iterable);
        if (it == NULL) {
            Py_DECREF(cache);
            return -1;
        }
        PyObject *pair;
        while ((pair = PyIter_Next(it)) != NULL) {
            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
                Py_DECREF(pair);
                PyErr_SetString(PyExc_ValueError, "expected (name, value) pairs");
                rc = -1;
                break;
            }
            rc = value_one(self, info, entries, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1), kind, cache,
                           parts, suffix, kept);
            Py_DECREF(pair);
            if (rc < 0)
                break;
        }
        if (rc == 0 && PyErr_Occurred())
            rc = -1;
        Py_DECREF(it);
    }
    Py_DECREF(cache);
    return rc;
}

/* `name in mapping` for f_locals (a dict, or a FrameLocalsProxy on 3.13+). */
static int
contains(PyObject *mapping, PyObject *name)
{
    if (PyDict_CheckExact(mapping))
        return PyDict_Contains(mapping, name);
    return PySequence_Contains(mapping, name);
}

/* Recorder._snapshot. */
static int
snapshot(CoreObject *self, PyObject *info, PyObject *active, PyObject *parts)
{
    PyObject *frame = NULL, *decision = NULL, *locals = NULL, *entries = NULL, *gnames = NULL, *globals = NULL,
             *pairs = NULL, *suffix = NULL, *cache = NULL;
    Py_ssize_t kept = 0;
    int rc = -1;

    frame = sget(active, SL_A_FRAME);
    if (frame == NULL)
        goto done;
    decision = sget(info, SL_I_DECISION);
    if (decision == NULL || rset(self, s_attr_decision, decision) < 0)
        goto done;
    PyObject *is_module_obj = sget(info, SL_I_IS_MODULE);
    if (is_module_obj == NULL)
        goto done;
    int is_module = PyObject_IsTrue(is_module_obj);
    Py_DECREF(is_module_obj);
    if (is_module < 0)
        goto done;
    locals = frame_locals(frame);
    if (locals == NULL)
        goto done;
    if (is_module) {
        entries = sget(info, SL_I_GLOBAL_ENTRIES);
        if (entries == NULL || values(self, info, entries, locals, 0, s_global, active, parts, &suffix, &kept) < 0)
            goto done;
    }
    else {
        entries = sget(info, SL_I_LOCAL_ENTRIES);
        if (entries == NULL || values(self, info, entries, locals, 0, Py_None, active, parts, &suffix, &kept) < 0)
            goto done;
        gnames = sget(info, SL_I_GLOBAL_NAMES);
        if (gnames == NULL)
            goto done;
        int any = PyObject_IsTrue(gnames);
        if (any < 0)
            goto done;
        if (any) {
            globals = frame_globals(frame);
            if (globals == NULL || !PyTuple_Check(gnames))
                goto bad_globals;
            pairs = PyList_New(0);
            if (pairs == NULL)
                goto done;
            for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(gnames); i++) {
                PyObject *name = PyTuple_GET_ITEM(gnames, i), *value;
                if (PyDict_CheckExact(globals)) {
                    value = PyDict_GetItemWithError(globals, name);
                    if (value == NULL) {
                        if (PyErr_Occurred())
                            goto done;
                        continue;
                    }
                    Py_INCREF(value);
                }
                else {
                    int has = PySequence_Contains(globals, name);
                    if (has < 0)
                        goto done;
                    if (!has)
                        continue;
                    value = PyObject_GetItem(globals, name);
                    if (value == NULL)
                        goto done;
                }
                /* Left out before the pair is made, as Recorder._snapshot does. */
                int hidden = hidden_global(self, value);
                if (hidden != 0) {
                    Py_DECREF(value);
                    if (hidden < 0)
                        goto done;
                    continue;
                }
                int shadowed = contains(locals, name);
                if (shadowed) {
                    Py_DECREF(value);
                    if (shadowed < 0)
                        goto done;
                    continue;
                }
                PyObject *pair = PyTuple_Pack(2, name, value);
                Py_DECREF(value);
                if (pair == NULL || PyList_Append(pairs, pair) < 0) {
                    Py_XDECREF(pair);
                    goto done;
                }
                Py_DECREF(pair);
            }
            if (PyList_GET_SIZE(pairs) > 0) {
                Py_DECREF(entries);
                entries = sget(info, SL_I_GLOBAL_ENTRIES);
                if (entries == NULL || values(self, info, entries, pairs, 1, s_global, active, parts, &suffix, &kept) < 0)
                    goto done;
            }
        }
    }
    cache = sget(active, SL_A_CACHE);
    if (cache == NULL)
        goto done;
    Py_ssize_t cached = PyObject_Length(cache);
    if (cached < 0)
        goto done;
    if (kept != cached) {
        PyObject *args[3] = {self->recorder, active, is_module ? Py_None : locals};
        PyObject *r = headroom_call_method(s_forget_gone_names, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET);
        if (r == NULL)
            goto done;
        Py_DECREF(r);
    }
    rc = 0;
    goto done;
bad_globals:
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "CodeInfo.global_names must be a tuple");
done:
    Py_XDECREF(frame);
    Py_XDECREF(decision);
    Py_XDECREF(locals);
    Py_XDECREF(entries);
    Py_XDECREF(gnames);
    Py_XDECREF(globals);
    Py_XDECREF(pairs);
    Py_XDECREF(suffix);
    Py_XDECREF(cache);
    return rc;
}

/* The end of Recorder._emit (and of Recorder.line): a thread switch's text first when
 * another thread (another ThreadState: an OS ident can be reused) wrote the last event, then
 * the buffer and its flush rule.  Recorder._switch_text makes `ts` the current writer. */
static int
emit_text(CoreObject *self, PyObject *ts, PyObject *text)
{
    PyObject *current = NULL, *buffer = NULL;
    int rc = -1;
    Py_INCREF(text);
    current = rget(self, s_current_ts);
    if (current == NULL)
        goto done;
    if (ts != current) {
        PyObject *args[2] = {self->recorder, ts};
        PyObject *switch_text = headroom_call_method(s_switch_text, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET);
        if (switch_text == NULL)
            goto done;
        PyObject *joined = PyNumber_Add(switch_text, text);
        Py_DECREF(switch_text);
        if (joined == NULL)
            goto done;
        Py_SETREF(text, joined);
    }
    buffer = rget(self, s_buffer);  /* re-read: flush() replaces it */
    if (buffer == NULL)
        goto done;
    if (!PyList_Check(buffer)) {
        PyErr_SetString(PyExc_TypeError, "Recorder.buffer must be a list");
        goto done;
    }
    if (PyList_Append(buffer, text) < 0)
        goto done;
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    self->buffered_chars += length;
    if (PyList_GET_SIZE(buffer) > self->flush_every || length > self->large_fragment
            || self->buffered_chars > self->flush_chars) {
        self->buffered_chars = 0;
        PyObject *args[1] = {self->recorder};
        PyObject *r = headroom_call_method(s_flush, args, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET);
        if (r == NULL) {
            /* The text is in the buffer already: a flush that could not run at the recursion
             * limit leaves it there for the next one (Recorder.flush, Recorder._emit). */
            if (!PyErr_ExceptionMatches(PyExc_RecursionError))
                goto done;
            PyErr_Clear();
        }
        else {
            Py_DECREF(r);
        }
    }
    rc = 0;
done:
    Py_DECREF(text);
    Py_XDECREF(current);
    Py_XDECREF(buffer);
    return rc;
}

/* Recorder._emit: IO not yet written first (it belongs to the thread's previous event). */
static int
emit(CoreObject *self, PyObject *ts, PyObject *text)
{
    PyObject *pending = rget(self, s_io_pending);
    if (pending == NULL)
        return -1;
    int is_pending = PyObject_IsTrue(pending);
    Py_DECREF(pending);
    if (is_pending < 0)
        return -1;
    if (is_pending) {
        PyObject *io_flush = rget(self, s_io_flush);
        PyObject *r = io_flush == NULL ? NULL : headroom_call(io_flush, &ts, 1);
        Py_XDECREF(io_flush);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    return emit_text(self, ts, text);
}

/* The body of Recorder.line, run under the lock.  Returns 0 when done, 1 when the Python
 * Recorder.line must do this line (its Step text is not made yet), -1 on error. */
static int
line_body(CoreObject *self, PyObject *ts, PyObject *active, PyObject *line)
{
    PyObject *info = NULL, *step_texts = NULL, *parts = NULL, *text = NULL;
    int rc = -1;

    info = sget(active, SL_A_INFO);
    if (info == NULL)
        goto done;
    step_texts = sget(info, SL_I_STEP_TEXTS);
    if (step_texts == NULL)
        goto done;
    PyObject *step = PyDict_CheckExact(step_texts) ? PyDict_GetItemWithError(step_texts, line) : NULL;
    if (step == NULL) {
        rc = PyErr_Occurred() ? -1 : 1;
        goto done;
    }
    parts = PyList_New(1);
    if (parts == NULL)
        goto done;
    Py_INCREF(step);
    PyList_SET_ITEM(parts, 0, step);
    if (sset(active, SL_A_LAST_LINE, line) < 0)
        goto done;
    PyObject *pending = rget(self, s_io_pending);
    if (pending == NULL)
        goto done;
    int is_pending = PyObject_IsTrue(pending);
    Py_DECREF(pending);
    if (is_pending < 0)
        goto done;
    if (is_pending) {
        /* Output not yet written belongs to the thread's previous step. */
        PyObject *io_flush = rget(self, s_io_flush);
        PyObject *r = io_flush == NULL ? NULL : headroom_call(io_flush, &ts, 1);
        Py_XDECREF(io_flush);
        if (r == NULL)
            goto done;
        Py_DECREF(r);
    }
    if (snapshot(self, info, active, parts) < 0)
        goto done;
    self->steps += 1;
    self->values += PyList_GET_SIZE(parts) - 1;
    text = PyUnicode_Join(s_empty_str, parts);
    if (text == NULL)
        goto done;
    if (emit_text(self, ts, text) < 0)
        goto done;
    rc = 0;
done:
    Py_XDECREF(info);
    Py_XDECREF(step_texts);
    Py_XDECREF(parts);
    Py_XDECREF(text);
    return rc;
}

/* Recorder.line: the lock around line_body (released on every path, like try/finally). */
static PyObject *
core_line_impl(CoreObject *self, PyObject *ts, PyObject *active, PyObject *line)
{
    if (rlock_take(self->lock) < 0)
        return NULL;
    int rc = line_body(self, ts, active, line);
    if (rc < 0)
        return lock_release(self, NULL);
    if (rlock_give(self->lock) < 0)
        return NULL;
    if (rc == 1) {
        /* A line seen for the first time (or line 0): the Python implementation. */
        PyObject *args[4] = {self->recorder, ts, active, line};
        return headroom_call(self->py_line, args, 4);
    }
    Py_RETURN_NONE;
}

static PyObject *
core_line(CoreObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "line() takes 3 arguments (ts, active, line), %zd given", nargs);
        return NULL;
    }
    if (self->recorder == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Core.__init__ was not called");
        return NULL;
    }
    return core_line_impl(self, args[0], args[1], args[2]);
}

/* ---------------------------------------------------------------------------------------- */
/* Calls and returns: Recorder.enter / Recorder.leave for the common cases.                  */

/* An ASCII str (every text of a Call or Return the C path writes is ASCII; anything else
 * goes through Python). */
static int
is_ascii(PyObject *text)
{
    return text != NULL && PyUnicode_CheckExact(text) && PyUnicode_MAX_CHAR_VALUE(text) < 128;
}

/* An ASCII text built in a C buffer. */
typedef struct {
    char *buf;
    Py_ssize_t len, cap;
    char local[256];
} Builder;

static void
b_init(Builder *b)
{
    b->buf = b->local;
    b->len = 0;
    b->cap = (Py_ssize_t)sizeof(b->local);
}

static void
b_free(Builder *b)
{
    if (b->buf != b->local)
        PyMem_Free(b->buf);
    b->buf = b->local;
}

static int
b_bytes(Builder *b, const char *data, Py_ssize_t n)
{
    if (b->len + n > b->cap) {
        Py_ssize_t cap = (b->len + n) * 2;
        char *buf = PyMem_Malloc((size_t)cap);
        if (buf == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(buf, b->buf, (size_t)b->len);
        b_free(b);
        b->buf = buf;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, data, (size_t)n);
    b->len += n;
    return 0;
}

#define B_LIT(b, lit) b_bytes((b), (lit), (Py_ssize_t)(sizeof(lit) - 1))

/* An ASCII str (checked by the caller), optionally without its last `drop` characters. */
static int
b_str(Builder *b, PyObject *text, Py_ssize_t drop)
{
    return b_bytes(b, (const char *)PyUnicode_1BYTE_DATA(text), PyUnicode_GET_LENGTH(text) - drop);
}

static int
b_int(Builder *b, long long v)
{
    char digits[32];
    int n = decimal(digits, v);
    return b_bytes(b, digits, n);
}

/* An Int value: '{"kind":"Int","i":N' + the encoder's int_value_suffix (an ASCII str, checked
 * by the caller) without its last `drop` characters: 2 drops the "}}" that closes a Value
 * event, leaving the encoder's _int_suffix. */
static int
b_int_value(Builder *b, long long v, PyObject *int_value_suffix, Py_ssize_t drop)
{
    if (b_bytes(b, INT_MIDDLE, (Py_ssize_t)(sizeof(INT_MIDDLE) - 1)) < 0 || b_int(b, v) < 0)
        return -1;
    return b_str(b, int_value_suffix, drop);
}

static PyObject *
b_finish(Builder *b)
{
    PyObject *text = PyUnicode_New(b->len, 127);
    if (text != NULL)
        memcpy(PyUnicode_1BYTE_DATA(text), b->buf, (size_t)b->len);
    b_free(b);
    return text;
}

/* The text of a tuple whose elements are all scalars the snapshot loop writes itself (an
 * int within int64, a float, a str within max_string, a bool, None), exactly as the encoder's
 * _tuple writes it at depth 0 (its dep is then EMPTY).  NULL without an error for any other
 * tuple, a non-ASCII text, and until the encoder has interned the tuple type (the first tuple
 * goes through Python, so its Type event is written where the Python core writes it).
 * `int_suffix` is the encoder's int_value_suffix. */
static PyObject *
tuple_body(CoreObject *self, PyObject *value, PyObject *int_suffix)
{
    Py_ssize_t n = PyTuple_GET_SIZE(value);
    if (self->max_depth < 1 || n > self->max_items || !is_ascii(int_suffix) || PyUnicode_GET_LENGTH(int_suffix) < 2)
        return NULL;
    if (!self->tuple_tid_known) {
        PyObject *encoder = rget(self, s_encoder);
        PyObject *type_ids = encoder == NULL ? NULL : PyObject_GetAttrString(encoder, "_type_ids");
        Py_XDECREF(encoder);
        if (type_ids == NULL)
            return NULL;
        PyObject *key = Py_BuildValue("(is)", 27 /* encoder.KIND_TUPLE */, "tuple");
        PyObject *tid = key == NULL || !PyDict_Check(type_ids) ? NULL : PyDict_GetItemWithError(type_ids, key);
        long long v = 0;
        int fits = tid == NULL ? 0 : as_int64(tid, &v);
        Py_XDECREF(key);
        Py_DECREF(type_ids);
        if (fits != 1)
            return NULL;  /* (an error, if any, is the caller's to see) */
        self->tuple_tid = v;
        self->tuple_tid_known = 1;
    }
    Builder b;
    b_init(&b);
    PyObject *result = NULL;
    if (B_LIT(&b, "{\"kind\":\"Tuple\",\"elements\":[") < 0)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(value, i);
        if (i > 0 && B_LIT(&b, ",") < 0)
            goto done;
        long long v;
        int fits = PyLong_CheckExact(item) ? as_int64(item, &v) : 0;
        if (fits < 0)
            goto done;
        if (fits) {
            if (b_int_value(&b, v, int_suffix, 2) < 0)
                goto done;
            continue;
        }
        if (PyLong_CheckExact(item))
            goto done;  /* a big int */
        PyObject *body = scalar_body(self, item);
        if (body == NULL)
            goto done;
        int ascii = is_ascii(body);
        int rc = ascii ? b_str(&b, body, 0) : 0;
        Py_DECREF(body);
        if (!ascii || rc < 0)
            goto done;
    }
    if (B_LIT(&b, "],\"type_id\":") < 0 || b_int(&b, self->tuple_tid) < 0 || B_LIT(&b, "}") < 0)
        goto done;
    result = b_finish(&b);
done:
    b_free(&b);
    return result;
}

/* encoder._elements_of for new items (Core.item_texts(items, depth)): the text of each item
 * that is a scalar the snapshot loop writes itself, or a tuple of those shown at `depth`,
 * exactly as the encoder writes it (the dep of each is EMPTY).  Returns (texts, misses):
 * texts[i] is None at each position i in misses, which the encoder encodes itself.  No type
 * is interned here (see tuple_body), so Type events land where the Python encoder puts them. */
static PyObject *
core_item_texts(CoreObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyTuple_CheckExact(args[0]) || !PyLong_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "item_texts(items: tuple, depth: int)");
        return NULL;
    }
    PyObject *items = args[0];
    Py_ssize_t depth = PyLong_AsSsize_t(args[1]);
    if (depth == -1 && PyErr_Occurred())
        return NULL;
    PyObject *int_suffix = NULL;
    if ((!self->scalars_loaded && load_scalars(self) < 0) || load_int_suffix(self, &int_suffix) < 0)
        return NULL;
    int ascii_suffix = is_ascii(int_suffix) && PyUnicode_GET_LENGTH(int_suffix) >= 2;
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    PyObject *texts = PyList_New(n), *misses = NULL, *result = NULL;
    if (texts == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        PyObject *body = NULL;
        long long v;
        int fits = as_int64(item, &v);
        if (fits < 0)
            goto done;
        if (fits && ascii_suffix) {
            Builder b;
            b_init(&b);
            if (b_int_value(&b, v, int_suffix, 2) == 0)
                body = b_finish(&b);
            b_free(&b);
            if (body == NULL)
                goto done;
        }
        else if (PyTuple_CheckExact(item)) {
            if (depth < self->max_depth)
                body = tuple_body(self, item, int_suffix);
        }
        else if (!PyLong_CheckExact(item)) {
            body = scalar_body(self, item);
        }
        if (body == NULL) {
            if (PyErr_Occurred())
                goto done;
            PyObject *at = PyLong_FromSsize_t(i);
            if (misses == NULL)
                misses = PyList_New(0);
            if (at == NULL || misses == NULL || PyList_Append(misses, at) < 0) {
                Py_XDECREF(at);
                goto done;
            }
            Py_DECREF(at);
            body = Py_NewRef(Py_None);
        }
        PyList_SET_ITEM(texts, i, body);
    }
    result = misses == NULL ? PyTuple_Pack(2, texts, empty_tuple) : PyTuple_Pack(2, texts, misses);
done:
    Py_XDECREF(texts);
    Py_XDECREF(misses);
    Py_XDECREF(int_suffix);
    return result;
}

/* counts[key] = counts.get(key, 0) + 1 on a counter dict of the recorder (redactions, drops). */
static int
bump(CoreObject *self, PyObject *dict_name, PyObject *key)
{
    PyObject *counts = rget(self, dict_name);
    if (counts == NULL)
        return -1;
    PyObject *old;
    if (PyDict_CheckExact(counts)) {
        old = PyDict_GetItemWithError(counts, key);
        if (old == NULL && PyErr_Occurred()) {
            Py_DECREF(counts);
            return -1;
        }
        old = old != NULL ? Py_NewRef(old) : PyLong_FromLong(0);
    }
    else {
        old = PyObject_CallMethod(counts, "get", "Oi", key, 0);
    }
    PyObject *one = old == NULL ? NULL : PyLong_FromLong(1);
    PyObject *sum = one == NULL ? NULL : PyNumber_Add(old, one);
    Py_XDECREF(old);
    Py_XDECREF(one);
    int rc = sum == NULL ? -1 : PyObject_SetItem(counts, key, sum);
    Py_XDECREF(sum);
    Py_DECREF(counts);
    return rc;
}

/* The exception being raised, set aside while cleanup code calls the C API. */
typedef struct {
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc;
#else
    PyObject *type, *value, *tb;
#endif
} SavedError;

static void
error_save(SavedError *e)
{
#if PY_VERSION_HEX >= 0x030C0000
    e->exc = PyErr_GetRaisedException();
#else
    PyErr_Fetch(&e->type, &e->value, &e->tb);
#endif
}

static void
error_restore(SavedError *e)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(e->exc);
#else
    PyErr_Restore(e->type, e->value, e->tb);
#endif
}

static void
error_drop(SavedError *e)
{
#if PY_VERSION_HEX >= 0x030C0000
    Py_XDECREF(e->exc);
#else
    Py_XDECREF(e->type);
    Py_XDECREF(e->value);
    Py_XDECREF(e->tb);
#endif
}

/* Releases the lock and returns `result` (NULL when the body failed: its exception is kept,
 * unless the release fails too, whose error wins as in `finally`). */
static PyObject *
lock_release(CoreObject *self, PyObject *result)
{
    if (result == NULL) {
        SavedError error;
        error_save(&error);
        if (rlock_give(self->lock) < 0) {
            error_drop(&error);
            return NULL;
        }
        error_restore(&error);
        return NULL;
    }
    if (rlock_give(self->lock) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

/* `mapping.get(name)` for f_locals: a new reference, NULL without an error when missing. */
static PyObject *
local_get(PyObject *locals, PyObject *name)
{
    if (PyDict_CheckExact(locals)) {
        PyObject *value = PyDict_GetItemWithError(locals, name);
        return Py_XNewRef(value);
    }
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *value;
    if (PyMapping_GetOptionalItem(locals, name, &value) < 0)
        return NULL;
    return value;
#else
    PyObject *value = PyObject_GetItem(locals, name);
    if (value == NULL && PyErr_ExceptionMatches(PyExc_KeyError))
        PyErr_Clear();
    return value;
#endif
}

/* A plain int within int64 (the encoder's Int): 1 and *out set, 0 when not, -1 on error. */
static int
as_int64(PyObject *value, long long *out)
{
    if (!PyLong_CheckExact(value))
        return 0;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow)
        return 0;
    *out = v;
    return 1;
}

/* The mode of a variable entry (mode, text, kind): 0..3, other ints as is, -1 when not an
 * int or the entry is not a tuple of at least two items. */
static long
entry_mode(PyObject *entry)
{
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) < 2 || !PyLong_CheckExact(PyTuple_GET_ITEM(entry, 0)))
        return -1;
    int overflow = 0;
    long mode = PyLong_AsLongAndOverflow(PyTuple_GET_ITEM(entry, 0), &overflow);
    if (overflow || mode < 0) {
        PyErr_Clear();
        return 4;  /* an int that is no known mode: nothing is written for it, as in Python */
    }
    return mode;
}

/* ActiveFrame(info, frame), without running its Python __init__ (same attributes). */
static PyObject *
new_active(CoreObject *self, PyObject *info, PyObject *frame, PyObject *cache)
{
    PyObject *active = PyType_GenericNew((PyTypeObject *)self->active_frame, empty_tuple, NULL);
    if (active == NULL)
        return NULL;
    if (sset(active, SL_A_INFO, info) < 0 || sset(active, SL_A_FRAME, frame) < 0
            || sset(active, SL_A_LAST_LINE, minus_one) < 0
            || sset(active, SL_A_EXCEPTION, Py_None) < 0
            || sset(active, SL_A_EXCEPTION_LASTI, minus_two) < 0
            || sset(active, SL_A_RESUME_PENDING, Py_False) < 0
            || sset(active, SL_A_CACHE, cache) < 0) {
        Py_DECREF(active);
        return NULL;
    }
    return active;
}

#define FAST_ARGS 16

/* The body of Recorder.enter, under the lock.  Returns 1 with *out the new ActiveFrame, 0
 * when the Python Recorder.enter must do this call (nothing was changed yet), -1 on error.
 *
 * Done here: every argument is missing, ALLOW with an exact int64 int or None (whose texts
 * need no Node from the caller's cache), REDACT, DROP or HIDDEN, and every entry exists. */
static int
enter_body(CoreObject *self, PyObject *ts, PyObject *info, PyObject *frame, PyObject **out)
{
    PyObject *arg_names = NULL, *entries = NULL, *locals = NULL, *variables = NULL, *suffix = NULL,
             *redacted = NULL, *call_step = NULL, *function_id = NULL, *stack = NULL, *decision = NULL,
             *active = NULL, *cache = NULL, *text = NULL;
    PyObject *vals[FAST_ARGS], *ents[FAST_ARGS];
    long long ivals[FAST_ARGS], vids[FAST_ARGS];
    long modes[FAST_ARGS];
    Py_ssize_t n = 0, filled = 0, i;
    long long fid = 0;
    int rc = -1;
    Builder b;
    b_init(&b);

    if (self->py_enter == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Core was made without py_enter");
        goto done;
    }
    /* Pass 1: check that this call is a common one, changing nothing. */
    arg_names = sget(info, SL_I_ARG_NAMES);
    if (arg_names == NULL)
        goto done;
    if (!PyTuple_CheckExact(arg_names) || (n = PyTuple_GET_SIZE(arg_names)) > FAST_ARGS)
        goto fallback;
    entries = sget(info, SL_I_LOCAL_ENTRIES);
    call_step = entries == NULL ? NULL : sget(info, SL_I_CALL_STEP);
    function_id = call_step == NULL ? NULL : sget(info, SL_I_FUNCTION_ID);
    stack = function_id == NULL ? NULL : sget(ts, SL_T_STACK);
    if (stack == NULL)
        goto done;
    if (!PyDict_CheckExact(entries) || !is_ascii(call_step) || !PyList_CheckExact(stack)
            || as_int64(function_id, &fid) != 1)
        goto fallback;
    locals = frame_locals(frame);
    if (locals == NULL)
        goto done;
    for (i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(arg_names, i);
        PyObject *value = local_get(locals, name);
        ents[i] = NULL;
        vals[i] = value;
        filled = i + 1;
        modes[i] = -1;
        if (value == NULL) {
            if (PyErr_Occurred())
                goto done;
            continue;  /* not bound: not shown */
        }
        PyObject *entry = PyDict_GetItemWithError(entries, name);
        if (entry == NULL) {
            if (PyErr_Occurred())
                goto done;
            goto fallback;  /* made by Recorder._entry on first sight */
        }
        ents[i] = Py_NewRef(entry);
        long mode = modes[i] = entry_mode(entry);
        if (mode < 0)
            goto fallback;
        if (mode == MODE_ALLOW) {
            if (!is_ascii(PyTuple_GET_ITEM(entry, 1)))
                goto fallback;
            if (value == Py_None) {
                if (!is_ascii(self->none_text))
                    goto fallback;
            }
            else {
                int fits = as_int64(value, &ivals[i]);
                if (fits < 0)
                    goto done;
                if (!fits)
                    goto fallback;
                if (load_int_suffix(self, &suffix) < 0)
                    goto done;
                if (!is_ascii(suffix) || PyUnicode_GET_LENGTH(suffix) < 2)
                    goto fallback;
            }
        }
        else if (mode == MODE_REDACT) {
            if (redacted == NULL && (redacted = rget(self, s_redacted_text)) == NULL)
                goto done;
            if (!is_ascii(redacted))
                goto fallback;
        }
        if (mode == MODE_ALLOW || mode == MODE_REDACT) {
            if (variables == NULL && (variables = rget(self, s_variables)) == NULL)
                goto done;
            if (!PyDict_CheckExact(variables))
                goto fallback;
            PyObject *vid = PyDict_GetItemWithError(variables, name);
            if (vid == NULL) {
                if (PyErr_Occurred())
                    goto done;
                goto fallback;
            }
            int ok = as_int64(vid, &vids[i]);
            if (ok < 0)
                goto done;
            if (!ok)
                goto fallback;
        }
    }

    /* Pass 2: the call. */
    decision = sget(info, SL_I_DECISION);
    if (decision == NULL || rset(self, s_attr_decision, decision) < 0)
        goto done;
    cache = PyDict_New();
    if (cache == NULL)
        goto done;
    active = new_active(self, info, frame, cache);
    if (active == NULL)
        goto done;
    if (b_str(&b, call_step, 0) < 0 || B_LIT(&b, ",\n{\"Call\":{\"function_id\":") < 0 || b_int(&b, fid) < 0
            || B_LIT(&b, ",\"args\":[") < 0)
        goto done;
    int first = 1;
    for (i = 0; i < n; i++) {
        long mode = modes[i];
        if (vals[i] == NULL)
            continue;
        if (mode == MODE_ALLOW || mode == MODE_REDACT) {
            if ((!first && B_LIT(&b, ",") < 0) || B_LIT(&b, "{\"variable_id\":") < 0 || b_int(&b, vids[i]) < 0
                    || B_LIT(&b, ",\"value\":") < 0)
                goto done;
            first = 0;
        }
        if (mode == MODE_ALLOW) {
            PyObject *prefix = PyTuple_GET_ITEM(ents[i], 1), *cached_text;
            if (vals[i] == Py_None) {
                /* text = NONE_TEXT; the cache's text is entry[1] + text + "}}" */
                if (b_str(&b, self->none_text, 0) < 0)
                    goto done;
                cached_text = concat("", prefix, self->none_text, "}}");
            }
            else {
                if (b_int_value(&b, ivals[i], suffix, 2) < 0)
                    goto done;
                cached_text = int_text(prefix, ivals[i], suffix);
            }
            if (cached_text == NULL)
                goto done;
            PyObject *item = PyTuple_Pack(3, vals[i], cached_text, self->empty);
            Py_DECREF(cached_text);
            int set = item == NULL ? -1 : PyDict_SetItem(cache, PyTuple_GET_ITEM(arg_names, i), item);
            Py_XDECREF(item);
            if (set < 0 || B_LIT(&b, "}") < 0)
                goto done;
        }
        else if (mode == MODE_REDACT) {
            if (b_str(&b, redacted, 0) < 0 || B_LIT(&b, "}") < 0 || bump(self, s_redactions, s_arg) < 0)
                goto done;
        }
        else if (mode == MODE_DROP) {
            if (bump(self, s_drops, s_arg) < 0)
                goto done;
        }
    }
    if (B_LIT(&b, "]}}") < 0)
        goto done;
    text = b_finish(&b);
    if (text == NULL || emit(self, ts, text) < 0)
        goto done;
    self->calls += 1;
    if (PyList_Append(stack, active) < 0)
        goto done;
    *out = Py_NewRef(active);
    rc = 1;
    goto done;
fallback:
    rc = 0;
done:
    b_free(&b);
    for (i = 0; i < filled; i++) {
        Py_XDECREF(vals[i]);
        Py_XDECREF(ents[i]);
    }
    Py_XDECREF(arg_names);
    Py_XDECREF(entries);
    Py_XDECREF(locals);
    Py_XDECREF(variables);
    Py_XDECREF(suffix);
    Py_XDECREF(redacted);
    Py_XDECREF(call_step);
    Py_XDECREF(function_id);
    Py_XDECREF(stack);
    Py_XDECREF(decision);
    Py_XDECREF(active);
    Py_XDECREF(cache);
    Py_XDECREF(text);
    return rc;
}

/* Recorder.enter(ts, info, frame): returns the new ActiveFrame. */
static PyObject *
core_enter_impl(CoreObject *self, PyObject *ts, PyObject *info, PyObject *frame)
{
    if (rlock_take(self->lock) < 0)
        return NULL;
    PyObject *active = NULL;
    int rc = enter_body(self, ts, info, frame, &active);
    if (rc == 0) {
        /* Anything unusual: the Python implementation (the lock is re-entrant). */
        PyObject *args[4] = {self->recorder, ts, info, frame};
        active = headroom_call(self->py_enter, args, 4);
    }
    return lock_release(self, active);
}

/* The body of Recorder.leave, under the lock: 1 done, 0 for the Python Recorder.leave
 * (nothing was changed yet), -1 on error.  Done here: a return value shown as is (ret
 * ALLOW) that is None or an exact int64 int, and a redacted or dropped return value. */
static int
leave_body(CoreObject *self, PyObject *ts, PyObject *value)
{
    PyObject *stack = NULL, *top = NULL, *info = NULL, *mode_obj = NULL, *decision = NULL,
             *suffix = NULL, *filtered = NULL, *text = NULL;
    long long v = 0;
    int rc = -1, fits = 0;
    Builder b;
    b_init(&b);

    if (self->py_leave == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Core was made without py_leave");
        goto done;
    }
    stack = sget(ts, SL_T_STACK);
    if (stack == NULL)
        goto done;
    if (!PyList_CheckExact(stack) || PyList_GET_SIZE(stack) == 0)
        goto fallback;
    top = Py_NewRef(PyList_GET_ITEM(stack, PyList_GET_SIZE(stack) - 1));
    info = sget(top, SL_A_INFO);
    mode_obj = info == NULL ? NULL : sget(info, SL_I_RET_MODE);
    if (mode_obj == NULL)
        goto done;
    if (!PyLong_CheckExact(mode_obj))
        goto fallback;
    int overflow = 0;
    long mode = PyLong_AsLongAndOverflow(mode_obj, &overflow);
    if (mode == -1 && PyErr_Occurred())
        goto done;
    if (overflow)
        goto fallback;
    if (mode == MODE_ALLOW) {
        if (value == Py_None) {
            if (!is_ascii(self->none_text))
                goto fallback;
        }
        else {
            fits = as_int64(value, &v);
            if (fits < 0)
                goto done;
            if (!fits)
                goto fallback;
            if (load_int_suffix(self, &suffix) < 0)
                goto done;
            if (!is_ascii(suffix))
                goto fallback;
        }
        decision = sget(info, SL_I_DECISION);
        if (decision == NULL || rset(self, s_attr_decision, decision) < 0)
            goto done;
    }
    else {
        /* Recorder._filtered_return */
        filtered = rget(self, mode == MODE_REDACT ? s_redacted_text : s_dropped_text);
        if (filtered == NULL)
            goto done;
        if (!is_ascii(filtered))
            goto fallback;
        if (bump(self, mode == MODE_REDACT ? s_redactions : s_drops, s_ret) < 0)
            goto done;
    }
    /* Recorder._return: ',\n{"Return":{"return_value":%s}}' % text */
    if (B_LIT(&b, ",\n{\"Return\":{\"return_value\":") < 0)
        goto done;
    if (mode == MODE_ALLOW && value != Py_None) {
        /* the Int and the "}}" closing the Return: the whole int_value_suffix */
        if (b_int_value(&b, v, suffix, 0) < 0)
            goto done;
    }
    else if (b_str(&b, mode == MODE_ALLOW ? self->none_text : filtered, 0) < 0 || B_LIT(&b, "}}") < 0) {
        goto done;
    }
    /* Pop only once the value is encoded, and before the Return is written (as
     * Recorder._return): a Return that could not be written at the recursion limit puts the
     * frame back. */
    Py_ssize_t depth = PyList_GET_SIZE(stack);
    if (depth == 0) {
        PyErr_SetString(PyExc_IndexError, "pop from empty list");
        goto done;
    }
    PyObject *returning = Py_NewRef(PyList_GET_ITEM(stack, depth - 1));
    if (PyList_SetSlice(stack, depth - 1, depth, NULL) < 0) {
        Py_DECREF(returning);
        goto done;
    }
    text = b_finish(&b);
    if (text == NULL || emit(self, ts, text) < 0) {
        if (text != NULL && PyErr_ExceptionMatches(PyExc_RecursionError)) {
            SavedError error;
            error_save(&error);
            if (PyList_Append(stack, returning) == 0)
                error_restore(&error);
            else
                error_drop(&error);
        }
        Py_DECREF(returning);
        goto done;
    }
    Py_DECREF(returning);
    self->returns += 1;
    rc = 1;
    goto done;
fallback:
    rc = 0;
done:
    b_free(&b);
    Py_XDECREF(stack);
    Py_XDECREF(top);
    Py_XDECREF(info);
    Py_XDECREF(mode_obj);
    Py_XDECREF(decision);
    Py_XDECREF(suffix);
    Py_XDECREF(filtered);
    Py_XDECREF(text);
    return rc;
}

/* Recorder.leave(ts, value). */
static PyObject *
core_leave_impl(CoreObject *self, PyObject *ts, PyObject *value)
{
    if (rlock_take(self->lock) < 0)
        return NULL;
    PyObject *result = NULL;
    int rc = leave_body(self, ts, value);
    if (rc == 1) {
        result = Py_NewRef(Py_None);
    }
    else if (rc == 0) {
        PyObject *args[3] = {self->recorder, ts, value};
        result = headroom_call(self->py_leave, args, 3);
    }
    return lock_release(self, result);
}

static int
core_ready(CoreObject *self)
{
    if (self->recorder == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Core.__init__ was not called");
        return -1;
    }
    return 0;
}

static PyObject *
core_enter(CoreObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "enter() takes 3 arguments (ts, info, frame), %zd given", nargs);
        return NULL;
    }
    if (core_ready(self) < 0)
        return NULL;
    return core_enter_impl(self, args[0], args[1], args[2]);
}

static PyObject *
core_leave(CoreObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "leave() takes 2 arguments (ts, value), %zd given", nargs);
        return NULL;
    }
    if (core_ready(self) < 0)
        return NULL;
    return core_leave_impl(self, args[0], args[1]);
}

static int
core_init(CoreObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"recorder", "py_line", "empty", "flush_every", "large_fragment", "flush_chars",
                             "node_check",
                             "py_enter", "py_leave", "active_frame", "none_text", "code_info", "thread_state",
                             "hidden_global_types", NULL};
    PyObject *recorder, *py_line, *empty, *node_check = NULL, *py_enter = NULL, *py_leave = NULL,
             *active_frame = NULL, *none_text = NULL, *code_info = NULL, *thread_state = NULL,
             *hidden_global_types = NULL;
    Py_ssize_t flush_every, large_fragment, flush_chars;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOnnn|OOOOUOOO!:Core", kwlist, &recorder, &py_line, &empty,
                                     &flush_every, &large_fragment, &flush_chars, &node_check, &py_enter, &py_leave,
                                     &active_frame, &none_text, &code_info, &thread_state, &PyFrozenSet_Type,
                                     &hidden_global_types))
        return -1;
    if (py_enter == Py_None)
        py_enter = NULL;
    if (py_leave == Py_None)
        py_leave = NULL;
    if (active_frame == Py_None)
        active_frame = NULL;
    if ((py_enter != NULL || py_leave != NULL) && (active_frame == NULL || none_text == NULL)) {
        PyErr_SetString(PyExc_TypeError, "py_enter and py_leave need active_frame and none_text");
        return -1;
    }
    if (active_frame != NULL && !PyType_Check(active_frame)) {
        PyErr_SetString(PyExc_TypeError, "active_frame must be a class");
        return -1;
    }
    if (active_frame != NULL && code_info != NULL && thread_state != NULL) {
        PyObject *classes[K_COUNT] = {[K_ACTIVE] = active_frame, [K_INFO] = code_info, [K_THREAD] = thread_state};
        if (configure_slots(classes) < 0)
            return -1;
    }
    PyObject *rdict = PyObject_GenericGetDict(recorder, NULL);
    if (rdict == NULL)
        return -1;
    if (!PyDict_Check(rdict)) {
        Py_DECREF(rdict);
        PyErr_SetString(PyExc_TypeError, "the recorder's __dict__ must be a dict");
        return -1;
    }
    PyObject *lock = PyObject_GetAttrString(recorder, "lock");
    if (lock == NULL) {
        Py_DECREF(rdict);
        return -1;
    }
    if (!PyObject_TypeCheck(lock, &RecorderLockType)) {
        Py_DECREF(rdict);
        Py_DECREF(lock);
        PyErr_SetString(PyExc_TypeError, "the recorder's lock must be a RecorderLock");
        return -1;
    }
    Py_INCREF(recorder);
    Py_INCREF(py_line);
    Py_INCREF(empty);
    Py_XSETREF(self->recorder, recorder);
    Py_XSETREF(self->rdict, rdict);
    Py_XSETREF(self->lock, (RecorderLockObject *)lock);
    Py_XSETREF(self->py_line, py_line);
    Py_XSETREF(self->empty, empty);
    if (node_check == Py_None)
        node_check = NULL;
    Py_XINCREF(node_check);
    Py_XSETREF(self->node_check, node_check);
    Py_XSETREF(self->py_enter, Py_XNewRef(py_enter));
    Py_XSETREF(self->py_leave, Py_XNewRef(py_leave));
    Py_XSETREF(self->active_frame, Py_XNewRef(active_frame));
    Py_XSETREF(self->none_text, Py_XNewRef(none_text));
    Py_XSETREF(self->hidden_global_types, Py_XNewRef(hidden_global_types));
    self->flush_every = flush_every;
    self->large_fragment = large_fragment;
    self->flush_chars = flush_chars;
    self->buffered_chars = 0;
    return 0;
}

static int
core_traverse(CoreObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->recorder);
    Py_VISIT(self->rdict);
    Py_VISIT(self->lock);
    Py_VISIT(self->py_line);
    Py_VISIT(self->empty);
    Py_VISIT(self->node_check);
    Py_VISIT(self->float_suffix);
    Py_VISIT(self->int_suffix);
    Py_VISIT(self->str_suffix);
    Py_VISIT(self->true_text);
    Py_VISIT(self->false_text);
    Py_VISIT(self->escape);
    Py_VISIT(self->py_enter);
    Py_VISIT(self->py_leave);
    Py_VISIT(self->active_frame);
    Py_VISIT(self->none_text);
    Py_VISIT(self->hidden_global_types);
    return 0;
}

static int
core_clear(CoreObject *self)
{
    Py_CLEAR(self->recorder);
    Py_CLEAR(self->rdict);
    Py_CLEAR(self->lock);
    Py_CLEAR(self->py_line);
    Py_CLEAR(self->empty);
    Py_CLEAR(self->node_check);
    Py_CLEAR(self->float_suffix);
    Py_CLEAR(self->int_suffix);
    Py_CLEAR(self->str_suffix);
    Py_CLEAR(self->true_text);
    Py_CLEAR(self->false_text);
    Py_CLEAR(self->escape);
    Py_CLEAR(self->py_enter);
    Py_CLEAR(self->py_leave);
    Py_CLEAR(self->active_frame);
    Py_CLEAR(self->none_text);
    Py_CLEAR(self->hidden_global_types);
    return 0;
}

static void
core_dealloc(CoreObject *self)
{
    PyObject_GC_UnTrack(self);
    core_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---------------------------------------------------------------------------------------- */
/* `except BaseException as exc: return guard(exc)`, with the raised exception.  On 3.12+ exc
 * is also the one being handled, so an error the guard raises is chained to it, as in Python.
 * The guard runs with headroom (headroom.h): at the program's recursion limit it still decides. */
static PyObject *
call_guard(PyObject *guard)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *previous = PyErr_GetHandledException();
    PyErr_SetHandledException(exc);
    PyObject *result = headroom_call(guard, &exc, 1);
    PyErr_SetHandledException(previous);
    Py_XDECREF(previous);
    Py_DECREF(exc);
#else
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    if (tb != NULL)
        PyException_SetTraceback(exc, tb);
    PyObject *result = headroom_call(guard, &exc, 1);
    Py_XDECREF(type);
    Py_XDECREF(exc);
    Py_XDECREF(tb);
#endif
    return result;
}

/* recorder.<name>(args...) with name "enter" or "leave": this core's own method in C, or
 * whatever the attribute is now (a wrapper). */
static PyObject *
call_recorder(CoreObject *core, PyObject *name, PyCFunction own, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *method = rget(core, name);
    if (method == NULL)
        return NULL;
    PyObject *r;
    if (PyCFunction_Check(method) && PyCFunction_GetSelf(method) == (PyObject *)core
            && PyCFunction_GetFunction(method) == own) {
        r = own == (PyCFunction)(void (*)(void))core_enter ? core_enter_impl(core, args[0], args[1], args[2])
                                                           : core_leave_impl(core, args[0], args[1]);
    }
    else {
        r = headroom_call(method, args, (size_t)nargs);
    }
    Py_DECREF(method);
    return r;
}

/* The calling thread's ThreadState, recorder.tls.state: a new reference, or NULL with
 * AttributeError when the thread has none yet.  Each callback keeps its last answer with the
 * id of the Python thread state that asked.  tls.state is set once per thread
 * (Recorder.current_thread_state) and a later thread never gets an earlier one's id, so the
 * kept answer stays right, and the thread-local (a dict lookup by thread, 6% of fib's
 * recording) is only asked again after a thread switch. */
typedef struct {
    uint64_t id;
    PyObject *ts;
} StateCache;

static PyObject *
thread_state(PyObject *tls, StateCache *cache)
{
    uint64_t id = PyThreadState_GetID(PyThreadState_Get());
    if (cache->ts != NULL && cache->id == id)
        return Py_NewRef(cache->ts);
    PyObject *ts = PyObject_GetAttr(tls, s_state);
    if (ts != NULL) {
        Py_XSETREF(cache->ts, Py_NewRef(ts));
        cache->id = id;
    }
    return ts;
}

/* MonitorLine: the sys.monitoring LINE callback (3.12+), `on_line` in hooks/monitoring.py.  */

#if PY_VERSION_HEX >= 0x030C0000




typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *tls;          /* recorder.tls */
    PyObject *record_line;  /* recorder.line as the backend found it (a fault hook may wrap it) */
    PyObject *guard;
    CoreObject *core;       /* set when record_line is this core's own line: called directly */
    StateCache state;
} MonitorLineObject;

static PyTypeObject MonitorLineType;

static PyObject *
monitor_line_call(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    MonitorLineObject *self = (MonitorLineObject *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 2 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)) {
        PyErr_SetString(PyExc_TypeError, "the LINE callback takes (code, line)");
        return NULL;
    }
    PyObject *code = args[0], *line = args[1];
    PyObject *ts = thread_state(self->tls, &self->state);
    if (ts == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
            Py_RETURN_NONE;  /* a thread with no recorded frame */
        }
        return NULL;
    }
    PyObject *stack = NULL, *active = NULL, *info = NULL, *info_code = NULL, *r = NULL;
    int failed = 1;
    stack = sget(ts, SL_T_STACK);
    if (stack == NULL)
        goto done;
    Py_ssize_t depth = PyObject_Length(stack);
    if (depth < 0)
        goto done;
    if (depth > 0) {
        active = PySequence_GetItem(stack, depth - 1);
        if (active == NULL)
            goto done;
        info = sget(active, SL_A_INFO);
        if (info == NULL)
            goto done;
        info_code = sget(info, SL_I_CODE);
        if (info_code == NULL)
            goto done;
        if (info_code == code) {
            if (self->core != NULL) {
                r = core_line_impl(self->core, ts, active, line);
            }
            else {
                PyObject *call_args[3] = {ts, active, line};
                r = headroom_call(self->record_line, call_args, 3);
            }
            if (r == NULL)
                goto done;
            Py_DECREF(r);
        }
    }
    failed = 0;
done:
    Py_DECREF(ts);
    Py_XDECREF(stack);
    Py_XDECREF(active);
    Py_XDECREF(info);
    Py_XDECREF(info_code);
    if (!failed)
        Py_RETURN_NONE;
    return call_guard(self->guard);
}

static PyObject *
monitor_line_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"tls", "record_line", "guard", "core", NULL};
    PyObject *tls, *record_line, *guard, *core = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|O:MonitorLine", kwlist, &tls, &record_line, &guard, &core))
        return NULL;
    MonitorLineObject *self = (MonitorLineObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = monitor_line_call;
    self->tls = Py_NewRef(tls);
    self->record_line = Py_NewRef(record_line);
    self->guard = Py_NewRef(guard);
    self->core = NULL;
    /* record_line is this core's own bound `line` unless something (a fault hook) wrapped it. */
    if (core != Py_None && PyObject_TypeCheck(core, &CoreType) && PyCFunction_Check(record_line)
            && PyCFunction_GetSelf(record_line) == core
            && PyCFunction_GetFunction(record_line) == (PyCFunction)(void (*)(void))core_line) {
        self->core = (CoreObject *)Py_NewRef(core);
    }
    return (PyObject *)self;
}

static int
monitor_line_traverse(MonitorLineObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->tls);
    Py_VISIT(self->record_line);
    Py_VISIT(self->guard);
    Py_VISIT(self->core);
    Py_VISIT(self->state.ts);
    return 0;
}

static int
monitor_line_clear(MonitorLineObject *self)
{
    Py_CLEAR(self->tls);
    Py_CLEAR(self->record_line);
    Py_CLEAR(self->guard);
    Py_CLEAR(self->core);
    Py_CLEAR(self->state.ts);
    return 0;
}

static void
monitor_line_dealloc(MonitorLineObject *self)
{
    PyObject_GC_UnTrack(self);
    monitor_line_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject MonitorLineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rewind.accelerator._speedups.MonitorLine",
    .tp_doc = PyDoc_STR("MonitorLine(tls, record_line, guard, core=None): the sys.monitoring LINE callback."),
    .tp_basicsize = sizeof(MonitorLineObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = monitor_line_new,
    .tp_dealloc = (destructor)monitor_line_dealloc,
    .tp_traverse = (traverseproc)monitor_line_traverse,
    .tp_clear = (inquiry)monitor_line_clear,
    .tp_vectorcall_offset = offsetof(MonitorLineObject, vectorcall),
    .tp_call = PyVectorcall_Call,
};


/* ---------------------------------------------------------------------------------------- */
/* MonitorStart / MonitorReturn: the PY_START and PY_RETURN (+ PY_YIELD) callbacks (3.12+),  */
/* `_on_start` and `_on_return` in hooks/monitoring.py.                                      */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *recorder;
    PyObject *tls;        /* recorder.tls */
    PyObject *encoder;    /* recorder.encoder */
    PyObject *code_infos; /* recorder.code_infos */
    PyObject *fallback;   /* the Python callback (backend._on_start): everything uncommon */
    PyObject *guard;
    CoreObject *core;
    StateCache state;
} MonitorCallObject;

static PyTypeObject MonitorStartType, MonitorReturnType;


static PyObject *
monitor_start_call(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    MonitorCallObject *self = (MonitorCallObject *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 2 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)) {
        PyErr_SetString(PyExc_TypeError, "the PY_START callback takes (code, offset)");
        return NULL;
    }
    PyObject *code = args[0];
    PyObject *key = NULL, *ts = NULL, *frame_code = NULL, *r = NULL;
    PyObject *in_repr = PyObject_GetAttr(self->encoder, s_in_repr);
    if (in_repr == NULL)
        goto error;
    int busy = PyObject_IsTrue(in_repr);
    Py_DECREF(in_repr);
    if (busy < 0)
        goto error;
    if (busy)
        Py_RETURN_NONE;
    if (!PyDict_CheckExact(self->code_infos))
        goto fallback;
    key = PyLong_FromVoidPtr(code);  /* id(code) */
    if (key == NULL)
        goto error;
    PyObject *info = PyDict_GetItemWithError(self->code_infos, key);
    if (info == NULL) {
        if (PyErr_Occurred())
            goto error;
        goto fallback;  /* first sight of this code object */
    }
    Py_INCREF(info);
    PyObject *traced = sget(info, SL_I_TRACED);
    int is_traced = traced == NULL ? -1 : PyObject_IsTrue(traced);
    Py_XDECREF(traced);
    if (is_traced <= 0) {
        Py_DECREF(info);
        if (is_traced < 0)
            goto error;
        goto fallback;  /* DISABLE */
    }
    ts = thread_state(self->tls, &self->state);
    if (ts == NULL) {
        Py_DECREF(info);
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            goto error;
        PyErr_Clear();
        goto fallback;  /* the thread's first recorded frame: current_thread_state() makes its state */
    }
    /* sys._getframe(1) in the Python callback: the frame that starts, the innermost one. */
    PyFrameObject *frame = PyEval_GetFrame();
    frame_code = frame == NULL ? NULL : (PyObject *)PyFrame_GetCode(frame);
    if (frame_code != code) {
        Py_DECREF(info);
        goto fallback;
    }
    Py_INCREF(frame);
    PyObject *call_args[3] = {ts, info, (PyObject *)frame};
    r = call_recorder(self->core, s_enter, (PyCFunction)(void (*)(void))core_enter, call_args, 3);
    Py_DECREF(frame);
    Py_DECREF(info);
    if (r == NULL)
        goto error;
    Py_DECREF(r);
    Py_DECREF(key);
    Py_DECREF(ts);
    Py_DECREF(frame_code);
    Py_RETURN_NONE;
fallback:
    Py_XDECREF(key);
    Py_XDECREF(ts);
    Py_XDECREF(frame_code);
    return headroom_call(self->fallback, args, 2);
error:
    Py_XDECREF(key);
    Py_XDECREF(ts);
    Py_XDECREF(frame_code);
    return call_guard(self->guard);
}

static PyObject *
monitor_return_call(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    MonitorCallObject *self = (MonitorCallObject *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 3 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)) {
        PyErr_SetString(PyExc_TypeError, "the PY_RETURN callback takes (code, offset, value)");
        return NULL;
    }
    PyObject *code = args[0], *value = args[2];
    PyObject *stack = NULL, *active = NULL, *info = NULL, *info_code = NULL, *r = NULL;
    int failed = 1;
    PyObject *ts = thread_state(self->tls, &self->state);
    if (ts == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
            Py_RETURN_NONE;  /* getattr(rec.tls, "state", None) is None */
        }
        return call_guard(self->guard);
    }
    stack = sget(ts, SL_T_STACK);
    if (stack == NULL)
        goto done;
    int nonempty = PyObject_IsTrue(stack);
    if (nonempty < 0)
        goto done;
    if (nonempty) {
        active = PySequence_GetItem(stack, -1);
        info = active == NULL ? NULL : sget(active, SL_A_INFO);
        info_code = info == NULL ? NULL : sget(info, SL_I_CODE);
        if (info_code == NULL)
            goto done;
        if (info_code == code) {
            PyObject *call_args[2] = {ts, value};
            r = call_recorder(self->core, s_leave, (PyCFunction)(void (*)(void))core_leave, call_args, 2);
            if (r == NULL)
                goto done;
            Py_DECREF(r);
        }
    }
    failed = 0;
done:
    Py_DECREF(ts);
    Py_XDECREF(stack);
    Py_XDECREF(active);
    Py_XDECREF(info);
    Py_XDECREF(info_code);
    if (!failed)
        Py_RETURN_NONE;
    return call_guard(self->guard);
}

static PyObject *
monitor_call_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *start_kwlist[] = {"recorder", "fallback", "guard", "core", NULL};
    static char *return_kwlist[] = {"recorder", "guard", "core", NULL};
    PyObject *recorder, *fallback = Py_None, *guard, *core;
    int ok = type == &MonitorStartType
        ? PyArg_ParseTupleAndKeywords(args, kwds, "OOOO!:MonitorStart", start_kwlist, &recorder, &fallback, &guard,
                                      &CoreType, &core)
        : PyArg_ParseTupleAndKeywords(args, kwds, "OOO!:MonitorReturn", return_kwlist, &recorder, &guard,
                                      &CoreType, &core);
    if (!ok)
        return NULL;
    PyObject *tls = PyObject_GetAttr(recorder, s_tls);
    PyObject *encoder = tls == NULL ? NULL : PyObject_GetAttr(recorder, s_encoder);
    PyObject *code_infos = encoder == NULL ? NULL : PyObject_GetAttr(recorder, s_code_infos);
    MonitorCallObject *self = code_infos == NULL ? NULL : (MonitorCallObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_XDECREF(tls);
        Py_XDECREF(encoder);
        Py_XDECREF(code_infos);
        return NULL;
    }
    self->vectorcall = type == &MonitorStartType ? monitor_start_call : monitor_return_call;
    self->recorder = Py_NewRef(recorder);
    self->tls = tls;
    self->encoder = encoder;
    self->code_infos = code_infos;
    self->fallback = Py_NewRef(fallback);
    self->guard = Py_NewRef(guard);
    self->core = (CoreObject *)Py_NewRef(core);
    return (PyObject *)self;
}

static int
monitor_call_traverse(MonitorCallObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->recorder);
    Py_VISIT(self->tls);
    Py_VISIT(self->encoder);
    Py_VISIT(self->code_infos);
    Py_VISIT(self->fallback);
    Py_VISIT(self->guard);
    Py_VISIT(self->core);
    Py_VISIT(self->state.ts);
    return 0;
}

static int
monitor_call_clear(MonitorCallObject *self)
{
    Py_CLEAR(self->recorder);
    Py_CLEAR(self->tls);
    Py_CLEAR(self->encoder);
    Py_CLEAR(self->code_infos);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->guard);
    Py_CLEAR(self->core);
    Py_CLEAR(self->state.ts);
    return 0;
}

static void
monitor_call_dealloc(MonitorCallObject *self)
{
    PyObject_GC_UnTrack(self);
    monitor_call_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject MonitorStartType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rewind.accelerator._speedups.MonitorStart",
    .tp_doc = PyDoc_STR("MonitorStart(recorder, fallback, guard, core): the sys.monitoring PY_START callback; "
                        "`fallback` (the Python callback) does everything but a known, traced code object."),
    .tp_basicsize = sizeof(MonitorCallObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = monitor_call_new,
    .tp_dealloc = (destructor)monitor_call_dealloc,
    .tp_traverse = (traverseproc)monitor_call_traverse,
    .tp_clear = (inquiry)monitor_call_clear,
    .tp_vectorcall_offset = offsetof(MonitorCallObject, vectorcall),
    .tp_call = PyVectorcall_Call,
};

static PyTypeObject MonitorReturnType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rewind.accelerator._speedups.MonitorReturn",
    .tp_doc = PyDoc_STR("MonitorReturn(recorder, guard, core): the sys.monitoring PY_RETURN / PY_YIELD callback."),
    .tp_basicsize = sizeof(MonitorCallObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = monitor_call_new,
    .tp_dealloc = (destructor)monitor_call_dealloc,
    .tp_traverse = (traverseproc)monitor_call_traverse,
    .tp_clear = (inquiry)monitor_call_clear,
    .tp_vectorcall_offset = offsetof(MonitorCallObject, vectorcall),
    .tp_call = PyVectorcall_Call,
};

#endif /* 3.12+ */

/* -- WithHeadroom: a Python callback, called with headroom ----------------------------------- */

/* The interpreter calls a Python callback (a sys.monitoring callback written in Python) by
 * pushing its frame: at the program's recursion limit that push fails and the RecursionError
 * lands in the program.  Registered through this wrapper instead, the callback is called from
 * C with headroom (headroom.h). */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *function;
} WithHeadroomObject;

static PyObject *
with_headroom_call(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    WithHeadroomObject *self = (WithHeadroomObject *)callable;
    headroom_take();
    PyObject *result = PyObject_Vectorcall(self->function, args, nargsf, kwnames);
    headroom_give();
    return result;
}

static PyObject *
with_headroom_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"function", NULL};
    PyObject *function;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:WithHeadroom", kwlist, &function))
        return NULL;
    WithHeadroomObject *self = (WithHeadroomObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = with_headroom_call;
    self->function = Py_NewRef(function);
    return (PyObject *)self;
}

static int
with_headroom_traverse(WithHeadroomObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->function);
    return 0;
}

static int
with_headroom_clear(WithHeadroomObject *self)
{
    Py_CLEAR(self->function);
    return 0;
}

static void
with_headroom_dealloc(WithHeadroomObject *self)
{
    PyObject_GC_UnTrack(self);
    with_headroom_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef with_headroom_members[] = {
    {"function", Py_T_OBJECT_EX, offsetof(WithHeadroomObject, function), Py_READONLY, "the wrapped callable"},
    {NULL},
};

static PyTypeObject WithHeadroomType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rewind.accelerator._speedups.WithHeadroom",
    .tp_doc = PyDoc_STR("WithHeadroom(function): calls function with the recursion limit raised while it runs, "
                        "for an interpreter callback written in Python."),
    .tp_basicsize = sizeof(WithHeadroomObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = with_headroom_new,
    .tp_dealloc = (destructor)with_headroom_dealloc,
    .tp_traverse = (traverseproc)with_headroom_traverse,
    .tp_clear = (inquiry)with_headroom_clear,
    .tp_members = with_headroom_members,
    .tp_vectorcall_offset = offsetof(WithHeadroomObject, vectorcall),
    .tp_call = PyVectorcall_Call,
};


/* `event` is the settrace event string `interned` ("line", "return"): the interpreter passes
 * its own interned strings, so identity nearly always answers. */
static inline int
is_event(PyObject *event, PyObject *interned)
{
    return event == interned || (PyUnicode_Check(event) && PyUnicode_Compare(event, interned) == 0);
}

/* -- SettraceLocal: the settrace local trace function's common events, in C ------------------- */

/* hooks/settrace.py's `_local` (the trace function of a recorded frame) for the events of
 * nearly every step and return, without a Python frame: a 'line' of the thread's innermost
 * recorded frame that is not a repeat of its last line, and a 'return' that is not the way
 * out of an exception.  Everything else (the other events, a frame not on top, a resumption
 * still to be written) is the Python `_local`'s, called with headroom (headroom.h); when it
 * returns itself, this object is returned instead, so the frame's next event comes here. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *ts;           /* the ThreadState of the thread this function traces */
    PyObject *fallback;     /* the Python _local */
    PyObject *record_line;  /* recorder.line as the backend found it (a fault hook may wrap it) */
    PyObject *guard;
    CoreObject *core;
    int own_line;           /* record_line is the core's own bound `line`: called directly */
    int detached;           /* set by detach(): the recording stopped, every event is ignored */
} SettraceLocalObject;

static PyTypeObject SettraceLocalType;

static PyObject *
settrace_local_fallback(SettraceLocalObject *self, PyObject *const *args, size_t nargsf)
{
    PyObject *result = headroom_call(self->fallback, args, nargsf);
    if (result == self->fallback) {
        Py_DECREF(result);
        result = Py_NewRef((PyObject *)self);
    }
    return result;
}

static PyObject *settrace_local_event(PyObject *callable, PyObject *const *args, size_t nargsf);

static PyObject *
settrace_local_call(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 3 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)) {
        PyErr_SetString(PyExc_TypeError, "a trace function takes (frame, event, arg)");
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    /* Before 3.12 a call of a C function (the node check, the string escaper) counts against
     * the same recursion limit as Python frames: every event gets headroom. */
    headroom_take();
    PyObject *result = settrace_local_event(callable, args, nargsf);
    headroom_give();
    return result;
#else
    return settrace_local_event(callable, args, nargsf);
#endif
}

static PyObject *
settrace_local_event(PyObject *callable, PyObject *const *args, size_t nargsf)
{
    SettraceLocalObject *self = (SettraceLocalObject *)callable;
    if (self->detached)
        Py_RETURN_NONE;
    PyObject *frame = args[0], *event = args[1], *arg = args[2];
    int is_line = is_event(event, s_line_event), is_return = !is_line && is_event(event, s_return_event);
    if ((!is_line && !is_return) || !PyFrame_Check(frame))
        return settrace_local_fallback(self, args, nargsf);
    PyObject *stack = NULL, *active = NULL, *active_frame = NULL, *flag = NULL, *r = NULL;
    PyObject *result = NULL;
    stack = sget(self->ts, SL_T_STACK);
    if (stack == NULL || !PyList_Check(stack))
        goto fallback;
    if (PyList_GET_SIZE(stack) == 0) {
        result = Py_NewRef(Py_None);  /* as _local: nothing recorded on this thread */
        goto done;
    }
    active = Py_NewRef(PyList_GET_ITEM(stack, PyList_GET_SIZE(stack) - 1));
    active_frame = sget(active, SL_A_FRAME);
    if (active_frame == NULL)
        goto error;
    if (active_frame != frame) {
        result = Py_NewRef(callable);
        goto done;
    }
    flag = sget(active, SL_A_RESUME_PENDING);
    if (flag == NULL)
        goto error;
    if (flag != Py_False)
        goto fallback;
    if (is_line) {
        int line = PyFrame_GetLineNumber((PyFrameObject *)frame);
        PyObject *last = sget(active, SL_A_LAST_LINE);
        if (last == NULL)
            goto error;
        long last_line = PyLong_AsLong(last);
        Py_DECREF(last);
        if (last_line == -1 && PyErr_Occurred())
            goto error;
        if (last_line != line) {  /* a repeat of the frame's previous line is not a step */
            PyObject *line_obj = PyLong_FromLong(line);
            if (line_obj == NULL || sset(active, SL_A_LAST_LINE, line_obj) < 0) {
                Py_XDECREF(line_obj);
                goto error;
            }
            if (self->own_line) {
                r = core_line_impl(self->core, self->ts, active, line_obj);
            }
            else {
                PyObject *call_args[3] = {self->ts, active, line_obj};
                r = headroom_call(self->record_line, call_args, 3);
            }
            Py_DECREF(line_obj);
            if (r == NULL)
                goto error;
        }
        result = Py_NewRef(callable);
        goto done;
    }
    /* 'return': left by an exception only when arg is None and an exception was seen. */
    if (arg == Py_None) {
        PyObject *exception = sget(active, SL_A_EXCEPTION);
        if (exception == NULL)
            goto error;
        int seen = exception != Py_None;
        Py_DECREF(exception);
        if (seen)
            goto fallback;
    }
    PyObject *call_args[2] = {self->ts, arg};
    r = call_recorder(self->core, s_leave, (PyCFunction)(void (*)(void))core_leave, call_args, 2);
    if (r == NULL)
        goto error;
    result = Py_NewRef(Py_None);
    goto done;
fallback:
    PyErr_Clear();
    result = settrace_local_fallback(self, args, nargsf);
    goto done;
error:
    /* except BaseException as exc: backend.guard(exc); return None */
    {
        PyObject *guarded = call_guard(self->guard);
        Py_XDECREF(guarded);
        result = guarded == NULL ? NULL : Py_NewRef(Py_None);
    }
done:
    Py_XDECREF(stack);
    Py_XDECREF(active);
    Py_XDECREF(active_frame);
    Py_XDECREF(flag);
    Py_XDECREF(r);
    return result;
}

static PyObject *
settrace_local_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ts", "fallback", "record_line", "guard", "core", NULL};
    PyObject *ts, *fallback, *record_line, *guard, *core;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOO!:SettraceLocal", kwlist, &ts, &fallback, &record_line,
                                     &guard, &CoreType, &core))
        return NULL;
    SettraceLocalObject *self = (SettraceLocalObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = settrace_local_call;
    self->ts = Py_NewRef(ts);
    self->fallback = Py_NewRef(fallback);
    self->record_line = Py_NewRef(record_line);
    self->guard = Py_NewRef(guard);
    self->core = (CoreObject *)Py_NewRef(core);
    /* record_line is this core's own bound `line` unless something (a fault hook) wrapped it. */
    self->own_line = PyCFunction_Check(record_line) && PyCFunction_GetSelf(record_line) == core
        && PyCFunction_GetFunction(record_line) == (PyCFunction)(void (*)(void))core_line;
    return (PyObject *)self;
}

static PyObject *
settrace_local_detach(SettraceLocalObject *self, PyObject *unused)
{
    (void)unused;
    self->detached = 1;
    Py_RETURN_NONE;
}

static int
settrace_local_traverse(SettraceLocalObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->ts);
    Py_VISIT(self->fallback);
    Py_VISIT(self->record_line);
    Py_VISIT(self->guard);
    Py_VISIT(self->core);
    return 0;
}

static int
settrace_local_clear(SettraceLocalObject *self)
{
    Py_CLEAR(self->ts);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->record_line);
    Py_CLEAR(self->guard);
    Py_CLEAR(self->core);
    return 0;
}

static void
settrace_local_dealloc(SettraceLocalObject *self)
{
    PyObject_GC_UnTrack(self);
    settrace_local_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef settrace_local_methods[] = {
    {"detach", (PyCFunction)settrace_local_detach, METH_NOARGS,
     "The recording stopped: ignore every event from now on (frames keep their trace function)."},
    {NULL},
};

static PyTypeObject SettraceLocalType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rewind.accelerator._speedups.SettraceLocal",
    .tp_doc = PyDoc_STR("SettraceLocal(ts, fallback, record_line, guard, core): the settrace local trace "
                        "function of thread state ts; `fallback` (the Python one) does the rare events."),
    .tp_basicsize = sizeof(SettraceLocalObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = settrace_local_new,
    .tp_dealloc = (destructor)settrace_local_dealloc,
    .tp_traverse = (traverseproc)settrace_local_traverse,
    .tp_clear = (inquiry)settrace_local_clear,
    .tp_methods = settrace_local_methods,
    .tp_vectorcall_offset = offsetof(SettraceLocalObject, vectorcall),
    .tp_call = PyVectorcall_Call,
};


/* -- SettraceGlobal: the settrace global trace function's common 'call', in C ---------------- */

/* hooks/settrace.py's `_global` for the 'call' event of nearly every call: a code object
 * already decided and traced, first entered (not a generator resuming), on a thread that has
 * its state and its local trace function already.  It enters the frame with the recorder's
 * `enter` and returns the thread's local trace function.  Anything else calls the Python
 * `_global` with headroom. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fallback;     /* the Python _global */
    PyObject *tls;          /* recorder.tls */
    PyObject *encoder;      /* recorder.encoder (in_repr) */
    PyObject *code_infos;   /* recorder.code_infos */
    PyObject *locals;       /* the backend's _local_of: ThreadState -> local trace function */
    PyObject *guard;
    CoreObject *core;
    StateCache state;
    int resume_op;          /* dis.opmap["RESUME"]; -1 before 3.11 */
    int detached;
} SettraceGlobalObject;

/* _is_first_entry(frame): 1 when a 'call' event starts the frame, 0 when it resumes a
 * suspended one, -2 when this cannot tell (the Python function decides), -1 on error. */
static int
first_entry(PyObject *frame, PyObject *code, int resume_op)
{
#if PY_VERSION_HEX >= 0x030B0000
    int lasti = PyFrame_GetLasti((PyFrameObject *)frame);
    if (lasti < 0)
        return 1;
    PyObject *co_code = PyCode_GetCode((PyCodeObject *)code);
    if (co_code == NULL)
        return -1;
    int first = -2;
    if (PyBytes_Check(co_code) && lasti + 1 < PyBytes_GET_SIZE(co_code)) {
        const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(co_code);
        /* RESUME's low two oparg bits say where it resumes: 0 is the function start. */
        first = b[lasti] == resume_op && (b[lasti + 1] & 3) == 0;
    }
    Py_DECREF(co_code);
    return first;
#else
    (void)code;
    (void)resume_op;
    PyObject *lasti = PyObject_GetAttrString(frame, "f_lasti");
    if (lasti == NULL)
        return -1;
    long value = PyLong_AsLong(lasti);
    Py_DECREF(lasti);
    if (value == -1 && PyErr_Occurred())
        return -1;
    return value < 0;  /* 3.10: a new frame has not executed anything yet */
#endif
}

static PyObject *
settrace_global_event(SettraceGlobalObject *self, PyObject *const *args, size_t nargsf)
{
    if (self->detached)
        Py_RETURN_NONE;
    PyObject *frame = args[0], *event = args[1];
    if (!is_event(event, s_call_event))
        Py_RETURN_NONE;  /* as _global: only 'call' starts anything */
    if (!PyFrame_Check(frame) || !PyDict_CheckExact(self->code_infos) || !PyDict_CheckExact(self->locals))
        goto fallback_clean;
    PyObject *code = NULL, *key = NULL, *info = NULL, *ts = NULL, *stack = NULL, *local = NULL, *r = NULL;
    PyObject *result = NULL;
    code = (PyObject *)PyFrame_GetCode((PyFrameObject *)frame);
    key = PyLong_FromVoidPtr(code);  /* id(code) */
    if (key == NULL)
        goto error;
    info = PyDict_GetItemWithError(self->code_infos, key);
    if (info == NULL) {
        if (PyErr_Occurred())
            goto error;
        goto fallback;  /* first sight of this code object (or activation) */
    }
    Py_INCREF(info);
    PyObject *traced = sget(info, SL_I_TRACED);
    int is_traced = traced == NULL ? -1 : PyObject_IsTrue(traced);
    Py_XDECREF(traced);
    if (is_traced < 0)
        goto error;
    if (!is_traced) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *in_repr = PyObject_GetAttr(self->encoder, s_in_repr);
    int busy = in_repr == NULL ? -1 : PyObject_IsTrue(in_repr);
    Py_XDECREF(in_repr);
    if (busy < 0)
        goto error;
    if (busy) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    ts = thread_state(self->tls, &self->state);
    if (ts == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            goto error;
        PyErr_Clear();
        goto fallback;  /* the thread's first recorded frame: current_thread_state() makes its state */
    }
    stack = sget(ts, SL_T_STACK);
    if (stack == NULL)
        goto error;
    if (!PyList_Check(stack))
        goto fallback;
    if (PyList_GET_SIZE(stack) > 0) {
        PyObject *pending = sget(PyList_GET_ITEM(stack, PyList_GET_SIZE(stack) - 1), SL_A_RESUME_PENDING);
        if (pending == NULL)
            goto error;
        int is_pending = pending != Py_False;
        Py_DECREF(pending);
        if (is_pending)
            goto fallback;  /* a resumption still to be written first */
    }
    local = PyDict_GetItemWithError(self->locals, ts);
    if (local == NULL) {
        if (PyErr_Occurred())
            goto error;
        goto fallback;  /* the thread's local trace function is made by _local_for */
    }
    Py_INCREF(local);
    int first = first_entry(frame, code, self->resume_op);
    if (first == -1)
        goto error;
    if (first != 1)
        goto fallback;  /* a generator or coroutine resuming: _global keeps it pending */
    PyObject *call_args[3] = {ts, info, frame};
    r = call_recorder(self->core, s_enter, (PyCFunction)(void (*)(void))core_enter, call_args, 3);
    if (r == NULL)
        goto error;
    result = Py_NewRef(local);
    goto done;
fallback:
    PyErr_Clear();
    result = headroom_call(self->fallback, args, nargsf);
    goto done;
error:
    /* except BaseException as exc: self.guard(exc); return None */
    {
        PyObject *guarded = call_guard(self->guard);
        Py_XDECREF(guarded);
        result = guarded == NULL ? NULL : Py_NewRef(Py_None);
    }
done:
    Py_XDECREF(code);
    Py_XDECREF(key);
    Py_XDECREF(info);
    Py_XDECREF(ts);
    Py_XDECREF(stack);
    Py_XDECREF(local);
    Py_XDECREF(r);
    return result;
fallback_clean:
    return headroom_call(self->fallback, args, nargsf);
}

static PyObject *
settrace_global_call(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 3 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)) {
        PyErr_SetString(PyExc_TypeError, "a trace function takes (frame, event, arg)");
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    headroom_take();  /* before 3.12 C calls count against the recursion limit (SettraceLocal) */
    PyObject *result = settrace_global_event((SettraceGlobalObject *)callable, args, nargsf);
    headroom_give();
    return result;
#else
    return settrace_global_event((SettraceGlobalObject *)callable, args, nargsf);
#endif
}

static PyObject *
settrace_global_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fallback", "recorder", "locals", "guard", "core", "resume_op", NULL};
    PyObject *fallback, *recorder, *locals, *guard, *core;
    int resume_op;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOO!i:SettraceGlobal", kwlist, &fallback, &recorder, &locals,
                                     &guard, &CoreType, &core, &resume_op))
        return NULL;
    PyObject *tls = PyObject_GetAttr(recorder, s_tls);
    PyObject *encoder = tls == NULL ? NULL : PyObject_GetAttr(recorder, s_encoder);
    PyObject *code_infos = encoder == NULL ? NULL : PyObject_GetAttr(recorder, s_code_infos);
    SettraceGlobalObject *self = code_infos == NULL ? NULL : (SettraceGlobalObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_XDECREF(tls);
        Py_XDECREF(encoder);
        Py_XDECREF(code_infos);
        return NULL;
    }
    self->vectorcall = settrace_global_call;
    self->fallback = Py_NewRef(fallback);
    self->tls = tls;
    self->encoder = encoder;
    self->code_infos = code_infos;
    self->locals = Py_NewRef(locals);
    self->guard = Py_NewRef(guard);
    self->core = (CoreObject *)Py_NewRef(core);
    self->resume_op = resume_op;
    return (PyObject *)self;
}

static PyObject *
settrace_global_detach(SettraceGlobalObject *self, PyObject *unused)
{
    (void)unused;
    self->detached = 1;
    Py_RETURN_NONE;
}

static int
settrace_global_traverse(SettraceGlobalObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fallback);
    Py_VISIT(self->tls);
    Py_VISIT(self->encoder);
    Py_VISIT(self->code_infos);
    Py_VISIT(self->locals);
    Py_VISIT(self->guard);
    Py_VISIT(self->core);
    Py_VISIT(self->state.ts);
    return 0;
}

static int
settrace_global_clear(SettraceGlobalObject *self)
{
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->tls);
    Py_CLEAR(self->encoder);
    Py_CLEAR(self->code_infos);
    Py_CLEAR(self->locals);
    Py_CLEAR(self->guard);
    Py_CLEAR(self->core);
    Py_CLEAR(self->state.ts);
    return 0;
}

static void
settrace_global_dealloc(SettraceGlobalObject *self)
{
    PyObject_GC_UnTrack(self);
    settrace_global_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef settrace_global_methods[] = {
    {"detach", (PyCFunction)settrace_global_detach, METH_NOARGS,
     "The recording stopped: ignore every event from now on (threads may keep this function)."},
    {NULL},
};

static PyTypeObject SettraceGlobalType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rewind.accelerator._speedups.SettraceGlobal",
    .tp_doc = PyDoc_STR("SettraceGlobal(fallback, recorder, locals, guard, core, resume_op): the settrace "
                        "global trace function; `fallback` (the Python one) does the rare 'call' events."),
    .tp_basicsize = sizeof(SettraceGlobalObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = settrace_global_new,
    .tp_dealloc = (destructor)settrace_global_dealloc,
    .tp_traverse = (traverseproc)settrace_global_traverse,
    .tp_clear = (inquiry)settrace_global_clear,
    .tp_methods = settrace_global_methods,
    .tp_vectorcall_offset = offsetof(SettraceGlobalObject, vectorcall),
    .tp_call = PyVectorcall_Call,
};

static PyObject *
core_counts(CoreObject *self, PyObject *unused)
{
    (void)unused;
    return Py_BuildValue("(nnnn)", self->steps, self->values, self->calls, self->returns);
}

static PyMethodDef core_methods[] = {
    {"counts", (PyCFunction)core_counts, METH_NOARGS,
     PyDoc_STR("counts() -> (steps, values, calls, returns): the events this core wrote itself.")},
    {"line", (PyCFunction)(void (*)(void))core_line, METH_FASTCALL,
     PyDoc_STR("line(ts, active, line): Recorder.line for one executed line.")},
    {"enter", (PyCFunction)(void (*)(void))core_enter, METH_FASTCALL,
     PyDoc_STR("enter(ts, info, frame): Recorder.enter for a traced frame that starts.")},
    {"leave", (PyCFunction)(void (*)(void))core_leave, METH_FASTCALL,
     PyDoc_STR("leave(ts, value): Recorder.leave for the innermost traced frame.")},
    {"item_texts", (PyCFunction)(void (*)(void))core_item_texts, METH_FASTCALL,
     PyDoc_STR("item_texts(items, depth): (texts, misses), the encoder's texts of the scalar items.")},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rewind.accelerator._speedups.Core",
    .tp_doc = PyDoc_STR("Core(recorder, py_line, empty, flush_every, large_fragment, flush_chars, node_check=None, "
                         "py_enter=None, py_leave=None, active_frame=None, none_text=None, code_info=None, "
                         "thread_state=None, hidden_global_types=None): the per-line, call and return work of one Recorder."),
    .tp_basicsize = sizeof(CoreObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)core_init,
    .tp_dealloc = (destructor)core_dealloc,
    .tp_traverse = (traverseproc)core_traverse,
    .tp_clear = (inquiry)core_clear,
    .tp_methods = core_methods,
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "rewind.accelerator._speedups",
    .m_doc = PyDoc_STR("The C accelerator of rewind's per-line hot path (see rewind/accelerator)."),
    .m_size = -1,
};

#define INTERN(var, text) \
    do { if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL; } while (0)

PyMODINIT_FUNC
PyInit__speedups(void)
{
    INTERN(s_info, "info");
    INTERN(s_step_texts, "step_texts");
    INTERN(s_last_line, "last_line");
    INTERN(s_io_pending, "io_pending");
    INTERN(s_io_flush, "io_flush");
    INTERN(s_frame, "frame");
    INTERN(s_attr_decision, "_attr_decision");
    INTERN(s_decision, "decision");
    INTERN(s_is_module, "is_module");
    INTERN(s_f_locals, "f_locals");
    INTERN(s_f_globals, "f_globals");
    INTERN(s_global_entries, "global_entries");
    INTERN(s_local_entries, "local_entries");
    INTERN(s_global_names, "global_names");
    INTERN(s_cache, "cache");
    INTERN(s_items, "items");
    INTERN(s_value_miss, "_value_miss");
    INTERN(s_forget_gone_names, "_forget_gone_names");
    INTERN(s_encoder, "encoder");
    INTERN(s_int_value_suffix, "int_value_suffix");
    INTERN(s_current_ts, "current_ts");
    INTERN(s_switch_text, "_switch_text");
    INTERN(s_buffer, "buffer");
    INTERN(s_flush, "flush");
    INTERN(s_global, "global");
    INTERN(s_state, "state");
    INTERN(s_stack, "stack");
    INTERN(s_code, "code");
    INTERN(s_empty_str, "");
    INTERN(s_arg_names, "arg_names");
    INTERN(s_variables, "variables");
    INTERN(s_redacted_text, "_redacted_text");
    INTERN(s_dropped_text, "_dropped_text");
    INTERN(s_redactions, "redactions");
    INTERN(s_drops, "drops");
    INTERN(s_call_step, "call_step");
    INTERN(s_function_id, "function_id");
    INTERN(s_ret_mode, "ret_mode");
    INTERN(s_arg, "arg");
    INTERN(s_ret, "ret");
    INTERN(s_exception, "exception");
    INTERN(s_exception_lasti, "exception_lasti");
    INTERN(s_resume_pending, "resume_pending");
    INTERN(s_in_repr, "in_repr");
    INTERN(s_traced, "traced");
    INTERN(s_enter, "enter");
    INTERN(s_leave, "leave");
    INTERN(s_code_infos, "code_infos");
    INTERN(s_tls, "tls");
    INTERN(s_line_event, "line");
    INTERN(s_return_event, "return");
    INTERN(s_call_event, "call");
    if ((empty_tuple = PyTuple_New(0)) == NULL || (minus_one = PyLong_FromLong(-1)) == NULL
            || (minus_two = PyLong_FromLong(-2)) == NULL)
        return NULL;

    if (PyType_Ready(&CoreType) < 0 || PyType_Ready(&RecorderLockType) < 0 || PyType_Ready(&WithHeadroomType) < 0
            || PyType_Ready(&SettraceLocalType) < 0 || PyType_Ready(&SettraceGlobalType) < 0)
        return NULL;
#if PY_VERSION_HEX >= 0x030C0000
    if (PyType_Ready(&MonitorLineType) < 0 || PyType_Ready(&MonitorStartType) < 0
            || PyType_Ready(&MonitorReturnType) < 0)
        return NULL;
#endif
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObject(module, "SOURCE_CRC", PyLong_FromUnsignedLong(REWIND_SOURCE_CRC)) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&CoreType);
    if (PyModule_AddObject(module, "Core", (PyObject *)&CoreType) < 0) {
        Py_DECREF(&CoreType);
        Py_DECREF(module);
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "RecorderLock", (PyObject *)&RecorderLockType) < 0
            || PyModule_AddObjectRef(module, "WithHeadroom", (PyObject *)&WithHeadroomType) < 0
            || PyModule_AddObjectRef(module, "SettraceLocal", (PyObject *)&SettraceLocalType) < 0
            || PyModule_AddObjectRef(module, "SettraceGlobal", (PyObject *)&SettraceGlobalType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
#if PY_VERSION_HEX >= 0x030C0000
    if (PyModule_AddObjectRef(module, "MonitorLine", (PyObject *)&MonitorLineType) < 0
            || PyModule_AddObjectRef(module, "MonitorStart", (PyObject *)&MonitorStartType) < 0
            || PyModule_AddObjectRef(module, "MonitorReturn", (PyObject *)&MonitorReturnType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
#endif
    return module;
}
