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
 * Only documented CPython API is used (no frame internals): f_locals, f_globals and the
 * recorder's objects are read as attributes, so this builds and runs on 3.10 to 3.13+.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <string.h>

/* Interned attribute names, created once at module init. */
static PyObject *s_info, *s_step_texts, *s_last_line, *s_io_pending, *s_io_flush, *s_frame,
    *s_attr_decision, *s_decision, *s_is_module, *s_f_locals, *s_f_globals, *s_global_entries,
    *s_local_entries, *s_global_names, *s_cache, *s_items, *s_value_miss, *s_forget_gone_names,
    *s_encoder, *s_int_value_suffix, *s_steps, *s_values, *s_tid, *s_current_tid, *s_switch_text,
    *s_buffer, *s_flush, *s_global, *s_state, *s_stack, *s_code, *s_empty_str;

static const char INT_MIDDLE[] = "{\"kind\":\"Int\",\"i\":";

/* ---------------------------------------------------------------------------------------- */
/* Core: one per Recorder.                                                                   */

typedef struct {
    PyObject_HEAD
    PyObject *recorder;
    PyObject *rdict;      /* recorder.__dict__: its plain attributes, read and set directly */
    PyObject *acquire;    /* recorder._acquire / _release (the RLock's bound methods) */
    PyObject *release;
    PyObject *py_line;    /* the Python Recorder.line (unbound): the rare cases */
    PyObject *empty;      /* recorder.EMPTY, the "reuse on identity" marker */
    PyObject *node_check; /* the encoder's node check (_nodes.unchanged), or NULL */
    Py_ssize_t flush_every;
    Py_ssize_t large_fragment;
} CoreObject;

static PyTypeObject CoreType;

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

/* The Value text of an int64: entry[1] + '{"kind":"Int","i":' + repr + suffix. */
static PyObject *
int_text(PyObject *prefix, long long v, PyObject *suffix)
{
    char digits[32];
    int nd = snprintf(digits, sizeof(digits), "%lld", v);
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

/* Recorder._values over one (name, value) pair; adds to *kept.  *suffix is the encoder's
 * int_value_suffix, read on first use. */
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
            PyObject *entry = PyDict_GetItemWithError(entries, name);
            if (entry == NULL && PyErr_Occurred())
                return -1;
            if (entry != NULL && PyTuple_CheckExact(entry) && PyTuple_GET_SIZE(entry) >= 2
                    && PyLong_CheckExact(PyTuple_GET_ITEM(entry, 0))
                    && PyLong_AsLong(PyTuple_GET_ITEM(entry, 0)) == 0 /* ALLOW */
                    && PyUnicode_CheckExact(PyTuple_GET_ITEM(entry, 1))) {
                if (*suffix == NULL) {
                    PyObject *encoder = rget(self, s_encoder);
                    if (encoder == NULL)
                        return -1;
                    *suffix = PyObject_GetAttr(encoder, s_int_value_suffix);
                    Py_DECREF(encoder);
                    if (*suffix == NULL)
                        return -1;
                    if (!PyUnicode_CheckExact(*suffix)) {
                        PyErr_SetString(PyExc_TypeError, "encoder.int_value_suffix must be a str");
                        return -1;
                    }
                }
                PyObject *text = int_text(PyTuple_GET_ITEM(entry, 1), v, *suffix);
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
        }
    }
    /* Everything else: Recorder._value_miss(info, entries, name, value, kind, cached, cache, parts).
     * It runs Python code, so hold `cached` across the call. */
    PyObject *cached_arg = cached != NULL ? cached : Py_None;
    Py_INCREF(cached_arg);
    PyObject *args[9] = {self->recorder, info, entries, name, value, kind, cached_arg, cache, parts};
    PyObject *result = PyObject_VectorcallMethod(s_value_miss, args, 9 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
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

/* Recorder._values: `source` is a mapping whose items() are the pairs (f_locals), or, when
 * `is_pairs` is set, a list of (name, value) tuples.  Returns 0 or -1. */
static int
values(CoreObject *self, PyObject *info, PyObject *entries, PyObject *source, int is_pairs, PyObject *kind,
       PyObject *active, PyObject *parts, PyObject **suffix, Py_ssize_t *kept)
{
    PyObject *cache = PyObject_GetAttr(active, s_cache);
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

    frame = PyObject_GetAttr(active, s_frame);
    if (frame == NULL)
        goto done;
    decision = PyObject_GetAttr(info, s_decision);
    if (decision == NULL || rset(self, s_attr_decision, decision) < 0)
        goto done;
    PyObject *is_module_obj = PyObject_GetAttr(info, s_is_module);
    if (is_module_obj == NULL)
        goto done;
    int is_module = PyObject_IsTrue(is_module_obj);
    Py_DECREF(is_module_obj);
    if (is_module < 0)
        goto done;
    locals = PyObject_GetAttr(frame, s_f_locals);
    if (locals == NULL)
        goto done;
    if (is_module) {
        entries = PyObject_GetAttr(info, s_global_entries);
        if (entries == NULL || values(self, info, entries, locals, 0, s_global, active, parts, &suffix, &kept) < 0)
            goto done;
    }
    else {
        entries = PyObject_GetAttr(info, s_local_entries);
        if (entries == NULL || values(self, info, entries, locals, 0, Py_None, active, parts, &suffix, &kept) < 0)
            goto done;
        gnames = PyObject_GetAttr(info, s_global_names);
        if (gnames == NULL)
            goto done;
        int any = PyObject_IsTrue(gnames);
        if (any < 0)
            goto done;
        if (any) {
            globals = PyObject_GetAttr(frame, s_f_globals);
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
                entries = PyObject_GetAttr(info, s_global_entries);
                if (entries == NULL || values(self, info, entries, pairs, 1, s_global, active, parts, &suffix, &kept) < 0)
                    goto done;
            }
        }
    }
    cache = PyObject_GetAttr(active, s_cache);
    if (cache == NULL)
        goto done;
    Py_ssize_t cached = PyObject_Length(cache);
    if (cached < 0)
        goto done;
    if (kept != cached) {
        PyObject *args[3] = {self->recorder, active, is_module ? Py_None : locals};
        PyObject *r = PyObject_VectorcallMethod(s_forget_gone_names, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
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

/* counter += n on the recorder (a plain int attribute). */
static int
add_counter(CoreObject *self, PyObject *name, Py_ssize_t n)
{
    PyObject *old = rget(self, name);
    if (old == NULL)
        return -1;
    PyObject *delta = PyLong_FromSsize_t(n);
    PyObject *sum = delta == NULL ? NULL : PyNumber_Add(old, delta);
    Py_DECREF(old);
    Py_XDECREF(delta);
    if (sum == NULL)
        return -1;
    int rc = rset(self, name, sum);
    Py_DECREF(sum);
    return rc;
}

/* The body of Recorder.line, run under the lock.  Returns 0 when done, 1 when the Python
 * Recorder.line must do this line (its Step text is not made yet), -1 on error. */
static int
line_body(CoreObject *self, PyObject *ts, PyObject *active, PyObject *line)
{
    PyObject *info = NULL, *step_texts = NULL, *parts = NULL, *text = NULL, *tid = NULL, *current = NULL,
             *buffer = NULL;
    int rc = -1;

    info = PyObject_GetAttr(active, s_info);
    if (info == NULL)
        goto done;
    step_texts = PyObject_GetAttr(info, s_step_texts);
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
    if (PyObject_SetAttr(active, s_last_line, line) < 0)
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
        PyObject *r = io_flush == NULL ? NULL : PyObject_CallOneArg(io_flush, ts);
        Py_XDECREF(io_flush);
        if (r == NULL)
            goto done;
        Py_DECREF(r);
    }
    if (snapshot(self, info, active, parts) < 0)
        goto done;
    if (add_counter(self, s_steps, 1) < 0 || add_counter(self, s_values, PyList_GET_SIZE(parts) - 1) < 0)
        goto done;
    text = PyUnicode_Join(s_empty_str, parts);
    if (text == NULL)
        goto done;
    tid = PyObject_GetAttr(ts, s_tid);
    current = tid == NULL ? NULL : rget(self, s_current_tid);
    if (current == NULL)
        goto done;
    if (tid != current) {
        int differs = PyObject_RichCompareBool(tid, current, Py_NE);
        if (differs < 0)
            goto done;
        if (differs) {
            PyObject *args[2] = {self->recorder, ts};
            PyObject *switch_text = PyObject_VectorcallMethod(s_switch_text, args,
                                                              2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
            if (switch_text == NULL)
                goto done;
            PyObject *joined = PyNumber_Add(switch_text, text);
            Py_DECREF(switch_text);
            if (joined == NULL)
                goto done;
            Py_SETREF(text, joined);
            if (rset(self, s_current_tid, tid) < 0)
                goto done;
        }
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
    if (PyList_GET_SIZE(buffer) > self->flush_every || PyUnicode_GET_LENGTH(text) > self->large_fragment) {
        PyObject *args[1] = {self->recorder};
        PyObject *r = PyObject_VectorcallMethod(s_flush, args, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (r == NULL)
            goto done;
        Py_DECREF(r);
    }
    rc = 0;
done:
    Py_XDECREF(info);
    Py_XDECREF(step_texts);
    Py_XDECREF(parts);
    Py_XDECREF(text);
    Py_XDECREF(tid);
    Py_XDECREF(current);
    Py_XDECREF(buffer);
    return rc;
}

/* Recorder.line: the lock around line_body (released on every path, like try/finally). */
static PyObject *
core_line_impl(CoreObject *self, PyObject *ts, PyObject *active, PyObject *line)
{
    PyObject *r = PyObject_CallNoArgs(self->acquire);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    int rc = line_body(self, ts, active, line);
    if (rc < 0) {
#if PY_VERSION_HEX >= 0x030C0000
        PyObject *exc = PyErr_GetRaisedException();
#else
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
#endif
        r = PyObject_CallNoArgs(self->release);
        if (r == NULL) {
            /* As in `finally`, the release's own error wins. */
#if PY_VERSION_HEX >= 0x030C0000
            Py_XDECREF(exc);
#else
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
#endif
            return NULL;
        }
        Py_DECREF(r);
#if PY_VERSION_HEX >= 0x030C0000
        PyErr_SetRaisedException(exc);
#else
        PyErr_Restore(type, value, tb);
#endif
        return NULL;
    }
    r = PyObject_CallNoArgs(self->release);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    if (rc == 1) {
        /* A line seen for the first time (or line 0): the Python implementation. */
        PyObject *args[4] = {self->recorder, ts, active, line};
        return PyObject_Vectorcall(self->py_line, args, 4, NULL);
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

static int
core_init(CoreObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"recorder", "py_line", "empty", "flush_every", "large_fragment", "node_check", NULL};
    PyObject *recorder, *py_line, *empty, *node_check = NULL;
    Py_ssize_t flush_every, large_fragment;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOnn|O:Core", kwlist, &recorder, &py_line, &empty, &flush_every,
                                     &large_fragment, &node_check))
        return -1;
    PyObject *rdict = PyObject_GenericGetDict(recorder, NULL);
    if (rdict == NULL)
        return -1;
    if (!PyDict_Check(rdict)) {
        Py_DECREF(rdict);
        PyErr_SetString(PyExc_TypeError, "the recorder's __dict__ must be a dict");
        return -1;
    }
    PyObject *acquire = PyObject_GetAttrString(recorder, "_acquire");
    PyObject *release = acquire == NULL ? NULL : PyObject_GetAttrString(recorder, "_release");
    if (release == NULL) {
        Py_DECREF(rdict);
        Py_XDECREF(acquire);
        return -1;
    }
    Py_INCREF(recorder);
    Py_INCREF(py_line);
    Py_INCREF(empty);
    Py_XSETREF(self->recorder, recorder);
    Py_XSETREF(self->rdict, rdict);
    Py_XSETREF(self->acquire, acquire);
    Py_XSETREF(self->release, release);
    Py_XSETREF(self->py_line, py_line);
    Py_XSETREF(self->empty, empty);
    if (node_check == Py_None)
        node_check = NULL;
    Py_XINCREF(node_check);
    Py_XSETREF(self->node_check, node_check);
    self->flush_every = flush_every;
    self->large_fragment = large_fragment;
    return 0;
}

static int
core_traverse(CoreObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->recorder);
    Py_VISIT(self->rdict);
    Py_VISIT(self->acquire);
    Py_VISIT(self->release);
    Py_VISIT(self->py_line);
    Py_VISIT(self->empty);
    Py_VISIT(self->node_check);
    return 0;
}

static int
core_clear(CoreObject *self)
{
    Py_CLEAR(self->recorder);
    Py_CLEAR(self->rdict);
    Py_CLEAR(self->acquire);
    Py_CLEAR(self->release);
    Py_CLEAR(self->py_line);
    Py_CLEAR(self->empty);
    Py_CLEAR(self->node_check);
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
/* MonitorLine: the sys.monitoring LINE callback (3.12+), `on_line` in hooks/monitoring.py.  */

#if PY_VERSION_HEX >= 0x030C0000

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *tls;          /* recorder.tls */
    PyObject *record_line;  /* recorder.line as the backend found it (a fault hook may wrap it) */
    PyObject *guard;
    CoreObject *core;       /* set when record_line is this core's own line: called directly */
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
    PyObject *ts = PyObject_GetAttr(self->tls, s_state);
    if (ts == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
            Py_RETURN_NONE;  /* a thread with no recorded frame */
        }
        return NULL;
    }
    PyObject *stack = NULL, *active = NULL, *info = NULL, *info_code = NULL, *r = NULL;
    int failed = 1;
    stack = PyObject_GetAttr(ts, s_stack);
    if (stack == NULL)
        goto done;
    Py_ssize_t depth = PyObject_Length(stack);
    if (depth < 0)
        goto done;
    if (depth > 0) {
        active = PySequence_GetItem(stack, depth - 1);
        if (active == NULL)
            goto done;
        info = PyObject_GetAttr(active, s_info);
        if (info == NULL)
            goto done;
        info_code = PyObject_GetAttr(info, s_code);
        if (info_code == NULL)
            goto done;
        if (info_code == code) {
            if (self->core != NULL) {
                r = core_line_impl(self->core, ts, active, line);
            }
            else {
                PyObject *call_args[3] = {ts, active, line};
                r = PyObject_Vectorcall(self->record_line, call_args, 3, NULL);
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
    /* except BaseException as exc: return guard(exc) -- exc is the one being handled, so an
     * error the guard raises is chained to it, as in Python. */
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *previous = PyErr_GetHandledException();
    PyErr_SetHandledException(exc);
    PyObject *result = PyObject_CallOneArg(self->guard, exc);
    PyErr_SetHandledException(previous);
    Py_XDECREF(previous);
    Py_DECREF(exc);
    return result;
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
    return 0;
}

static int
monitor_line_clear(MonitorLineObject *self)
{
    Py_CLEAR(self->tls);
    Py_CLEAR(self->record_line);
    Py_CLEAR(self->guard);
    Py_CLEAR(self->core);
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

#endif /* 3.12+ */

static PyMethodDef core_methods[] = {
    {"line", (PyCFunction)(void (*)(void))core_line, METH_FASTCALL,
     PyDoc_STR("line(ts, active, line): Recorder.line for one executed line.")},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rewind.accelerator._speedups.Core",
    .tp_doc = PyDoc_STR("Core(recorder, py_line, empty, flush_every, large_fragment, node_check=None): the per-line work of one Recorder."),
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
    INTERN(s_steps, "steps");
    INTERN(s_values, "values");
    INTERN(s_tid, "tid");
    INTERN(s_current_tid, "current_tid");
    INTERN(s_switch_text, "_switch_text");
    INTERN(s_buffer, "buffer");
    INTERN(s_flush, "flush");
    INTERN(s_global, "global");
    INTERN(s_state, "state");
    INTERN(s_stack, "stack");
    INTERN(s_code, "code");
    INTERN(s_empty_str, "");

    if (PyType_Ready(&CoreType) < 0)
        return NULL;
#if PY_VERSION_HEX >= 0x030C0000
    if (PyType_Ready(&MonitorLineType) < 0)
        return NULL;
#endif
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL)
        return NULL;
    Py_INCREF(&CoreType);
    if (PyModule_AddObject(module, "Core", (PyObject *)&CoreType) < 0) {
        Py_DECREF(&CoreType);
        Py_DECREF(module);
        return NULL;
    }
#if PY_VERSION_HEX >= 0x030C0000
    Py_INCREF(&MonitorLineType);
    if (PyModule_AddObject(module, "MonitorLine", (PyObject *)&MonitorLineType) < 0) {
        Py_DECREF(&MonitorLineType);
        Py_DECREF(module);
        return NULL;
    }
#endif
    return module;
}
