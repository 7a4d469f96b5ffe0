/* rewind.accelerator._nodes: the C version of encoder._unchanged.
 *
 * The encoder keeps a Node per container or object it encoded (encoder.py, "what an encoding
 * depends on").  At every step each cached Node is checked: does the object still hold the
 * same items, compared by identity, and so do the containers among them?  In Python that
 * check costs a call of the node's snapshot function plus a few attribute reads per node,
 * about 1.5 us; an object-heavy program checks thousands of nodes per step.  This module does
 * the same check with the snapshot taken natively for the snapshot kinds the encoder
 * registers (list, dict, set, frozenset, len, tuple, type-only, __dict__ fields, __dict__
 * and __slots__ fields, and one attribute read through its descriptor), and
 * calls the snapshot function itself for any other kind, so its answer is always the
 * Python function's answer.  The kind is the snapshot function's `snapshot_kind` attribute,
 * set by encoder.py.  Only documented CPython API is used.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "headroom.h"

#ifndef Py_T_OBJECT_EX  /* before 3.12 */
#include "structmember.h"
#define Py_T_OBJECT_EX T_OBJECT_EX
#endif

/* The CRC-32 of this file as built (setup.py): SOURCE_CRC, checked by accelerator._load. */
#ifndef REWIND_SOURCE_CRC
#define REWIND_SOURCE_CRC 0UL
#endif

/* Snapshot kinds: must match the SNAPSHOT_* constants in encoder.py. */
enum {
    KIND_CALL = 0,     /* call node.snapshot(node.obj) */
    KIND_LIST = 1,
    KIND_DICT = 2,
    KIND_SET = 3,      /* set and frozenset: the base iterator */
    KIND_LEN = 4,      /* len(obj) only */
    KIND_TUPLE = 5,    /* nothing to snapshot: a tuple's items never change */
    KIND_NOTHING = 6,  /* the text depends on the class only */
    KIND_DICT_FIELDS = 7,  /* an instance's __dict__ items, when its class is still `tp` */
    KIND_ATTRIBUTE = 8,    /* one str attribute, read as the function's snapshot_attribute says */
    KIND_FIELDS = 9,       /* __dict__ items then slots, as the function's snapshot_fields says */
};

/* The Node attributes read here, by index into NodesState.names / offsets. */
enum { N_TP, N_OBJ, N_SNAPSHOT, N_SIZE, N_ITEMS, N_SUBNODES, N_COUNT };
static const char *const node_attr_names[N_COUNT] = {"tp", "obj", "snapshot", "size", "items", "subnodes"};

typedef struct {
    PyObject *empty;   /* encoder.EMPTY */
    PyObject *node_type;  /* encoder.Node, or NULL: then every attribute is read by name */
    PyObject *names[N_COUNT];
    Py_ssize_t offsets[N_COUNT];  /* where Node's slots are in a Node (from its tp_members) */
    PyObject *kinds;   /* {snapshot function: kind}, filled from their snapshot_kind attribute */
    /* {snapshot function of KIND_ATTRIBUTE or KIND_FIELDS: what it reads}: its
     * snapshot_attribute (descriptor or None, name) or snapshot_fields (has_dict, ((name,
     * member descriptor), ...)). */
    PyObject *specs;
    PyObject *s_dict, *s_kind, *s_attribute, *s_fields;
} NodesState;

static NodesState state;

/* node.<attribute> (a new reference): read at the slot's offset, as its member descriptor
 * does; by name for another class or a slot not set. */
static inline PyObject *
node_get(PyObject *node, int which)
{
    if ((PyObject *)Py_TYPE(node) == state.node_type) {
        PyObject *value = *(PyObject **)((char *)node + state.offsets[which]);
        if (value != NULL)
            return Py_NewRef(value);
    }
    return PyObject_GetAttr(node, state.names[which]);
}

/* A snapshot_fields value: (has_dict: bool, ((name: str, member descriptor), ...)). */
static int
valid_fields_spec(PyObject *spec)
{
    PyObject *slots = PyTuple_GET_ITEM(spec, 1);
    if (!PyBool_Check(PyTuple_GET_ITEM(spec, 0)) || !PyTuple_Check(slots))
        return 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(slots); i++) {
        PyObject *slot = PyTuple_GET_ITEM(slots, i);
        if (!PyTuple_Check(slot) || PyTuple_GET_SIZE(slot) != 2 || !PyUnicode_Check(PyTuple_GET_ITEM(slot, 0))
                || Py_TYPE(PyTuple_GET_ITEM(slot, 1))->tp_descr_get == NULL)
            return 0;
    }
    return 1;
}

/* The snapshot kind of a snapshot function: its `snapshot_kind` attribute, cached. */
static long
snapshot_kind(PyObject *snapshot)
{
    PyObject *known = PyDict_GetItemWithError(state.kinds, snapshot);  /* borrowed */
    if (known != NULL)
        return PyLong_AsLong(known);
    if (PyErr_Occurred())
        return -1;
    long kind = KIND_CALL;
    PyObject *kind_obj = PyObject_GetAttr(snapshot, state.s_kind);
    if (kind_obj == NULL)
        PyErr_Clear();  /* no kind: the snapshot function is called */
    else {
        if (PyLong_Check(kind_obj))
            kind = PyLong_AsLong(kind_obj);
        Py_DECREF(kind_obj);
        if (kind == -1 && PyErr_Occurred())
            return -1;
    }
    if (kind == KIND_ATTRIBUTE || kind == KIND_FIELDS) {
        PyObject *spec = PyObject_GetAttr(snapshot, kind == KIND_ATTRIBUTE ? state.s_attribute : state.s_fields);
        int ok = spec != NULL && PyTuple_Check(spec) && PyTuple_GET_SIZE(spec) == 2
                 && (kind == KIND_ATTRIBUTE ? PyUnicode_Check(PyTuple_GET_ITEM(spec, 1)) : valid_fields_spec(spec));
        if (ok && PyDict_SetItem(state.specs, snapshot, spec) < 0) {
            Py_DECREF(spec);
            return -1;
        }
        Py_XDECREF(spec);
        if (!ok) {
            PyErr_Clear();
            kind = KIND_CALL;  /* not the shape this module reads: the function is called */
        }
    }
    PyObject *value = PyLong_FromLong(kind);
    if (value == NULL || PyDict_SetItem(state.kinds, snapshot, value) < 0) {
        Py_XDECREF(value);
        return -1;
    }
    Py_DECREF(value);
    return kind;
}

static int unchanged(PyObject *node, int depth);

/* 1 when the first len(old) items of `items` are `old`'s, by identity; len(items) must equal
 * len(old). */
static int
same_tuple(PyObject *items, PyObject *old)
{
    Py_ssize_t n = PyTuple_GET_SIZE(old);
    if (!PyTuple_Check(items) || PyTuple_GET_SIZE(items) != n)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyTuple_GET_ITEM(items, i) != PyTuple_GET_ITEM(old, i))
            return 0;
    }
    return 1;
}

/* dict items (k0, v0, k1, v1...) as far as `old` goes: the snapshot shows the first
 * len(old)/2 pairs in iteration order. */
static int
same_dict_items(PyObject *dict, PyObject *old, Py_ssize_t pairs_expected_all)
{
    Py_ssize_t n = PyTuple_GET_SIZE(old);
    Py_ssize_t pos = 0, at = 0;
    PyObject *key, *value;
    if (pairs_expected_all && PyDict_Size(dict) * 2 != n)
        return 0;
    while (at < n && PyDict_Next(dict, &pos, &key, &value)) {
        if (at + 1 >= n || key != PyTuple_GET_ITEM(old, at) || value != PyTuple_GET_ITEM(old, at + 1))
            return 0;
        at += 2;
    }
    return at == n;
}

/* Compare a Python-level snapshot (size, items) with the node's. -1 on error. */
static int
same_snapshot_by_call(PyObject *snapshot, PyObject *obj, PyObject *size, PyObject *old)
{
    PyObject *result = headroom_call(snapshot, &obj, 1);  /* Python code: see headroom.h */
    if (result == NULL)
        return -1;
    int same = 0;
    if (PyTuple_Check(result) && PyTuple_GET_SIZE(result) == 2) {
        int eq = PyObject_RichCompareBool(PyTuple_GET_ITEM(result, 0), size, Py_EQ);
        if (eq < 0) {
            Py_DECREF(result);
            return -1;
        }
        same = eq && same_tuple(PyTuple_GET_ITEM(result, 1), old);
    }
    Py_DECREF(result);
    return same;
}

/* encoder._attribute_repr_node's inputs_of for an object of its class, compared with the
 * node's (size, items): (0, (attribute,)) while the attribute is a str, else (-1, ()).
 * 1 same, 0 changed, -1 error, -2 a spec or node this does not read (the caller calls the
 * snapshot function instead). */
static int
same_attribute(PyObject *spec, PyObject *obj, PyObject *tp, Py_ssize_t old_size, PyObject *old)
{
    PyObject *descriptor = PyTuple_GET_ITEM(spec, 0), *name = PyTuple_GET_ITEM(spec, 1);
    descrgetfunc get = descriptor == Py_None ? NULL : Py_TYPE(descriptor)->tp_descr_get;
    if ((descriptor != Py_None && get == NULL) || old_size != 0 || PyTuple_GET_SIZE(old) != 1)
        return -2;
    PyObject *attribute = get != NULL ? get(descriptor, obj, tp) : PyObject_GenericGetAttr(obj, name);
    if (attribute == NULL) {
        /* inputs_of catches Exception: the snapshot is then (-1, ()), never equal */
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            return -1;
        PyErr_Clear();
        return 0;
    }
    /* The old attribute was a str: the same object is one still. */
    int same = attribute == PyTuple_GET_ITEM(old, 0);
    Py_DECREF(attribute);
    return same;
}

/* encoder._fields_reader's fields_of for an object of its class, compared with the node's
 * (size, items): the __dict__ items (when the class has one and it is a dict), then each
 * slot that is set, as (name, value) pairs.  1 same, 0 changed, -1 error. */
static int
same_fields(PyObject *spec, PyObject *obj, PyObject *tp, Py_ssize_t old_size, PyObject *old)
{
    Py_ssize_t n = PyTuple_GET_SIZE(old), at = 0;
    if (n != 2 * old_size)
        return 0;
    if (PyTuple_GET_ITEM(spec, 0) == Py_True) {
        /* object.__getattribute__(value, "__dict__"); any Exception leaves the dict out */
        PyObject *attrs = PyObject_GenericGetAttr(obj, state.s_dict);
        if (attrs == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_Exception))
                return -1;
            PyErr_Clear();
        }
        else if (PyDict_CheckExact(attrs)) {
            Py_ssize_t pos = 0;
            PyObject *key, *value;
            int same = PyDict_Size(attrs) * 2 <= n;
            while (same && PyDict_Next(attrs, &pos, &key, &value)) {
                same = key == PyTuple_GET_ITEM(old, at) && value == PyTuple_GET_ITEM(old, at + 1);
                at += 2;
            }
            Py_DECREF(attrs);
            if (!same)
                return 0;
        }
        else
            Py_DECREF(attrs);
    }
    PyObject *slots = PyTuple_GET_ITEM(spec, 1);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(slots); i++) {
        PyObject *slot = PyTuple_GET_ITEM(slots, i), *descriptor = PyTuple_GET_ITEM(slot, 1);
        PyObject *value = Py_TYPE(descriptor)->tp_descr_get(descriptor, obj, tp);
        if (value == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError))
                return -1;
            PyErr_Clear();  /* an unset slot is not an attribute yet */
            continue;
        }
        int same = at + 1 < n && PyTuple_GET_ITEM(slot, 0) == PyTuple_GET_ITEM(old, at)
                   && value == PyTuple_GET_ITEM(old, at + 1);
        Py_DECREF(value);
        if (!same)
            return 0;
        at += 2;
    }
    return at == n;
}

/* The node's own items (not its subnodes): 1 same, 0 changed, -1 error. */
static int
same_items(PyObject *node, PyObject *obj, PyObject *tp)
{
    PyObject *snapshot = node_get(node, N_SNAPSHOT);
    if (snapshot == NULL)
        return -1;
    long kind = snapshot_kind(snapshot);
    if (kind < 0) {
        Py_DECREF(snapshot);
        return -1;
    }
    if (kind == KIND_TUPLE || kind == KIND_NOTHING) {
        Py_DECREF(snapshot);
        return 1;
    }
    PyObject *size = node_get(node, N_SIZE);
    PyObject *old = size ? node_get(node, N_ITEMS) : NULL;
    int result = -1;
    if (old == NULL || !PyTuple_Check(old) || !PyLong_Check(size)) {
        if (old != NULL)  /* not a node this module understands: ask Python */
            result = same_snapshot_by_call(snapshot, obj, size, old);
        goto done;
    }
    Py_ssize_t old_size = PyLong_AsSsize_t(size);
    if (old_size == -1 && PyErr_Occurred())
        goto done;
    switch (kind) {
    case KIND_LIST: {
        if (!PyList_Check(obj)) { result = same_snapshot_by_call(snapshot, obj, size, old); break; }
        Py_ssize_t n = PyTuple_GET_SIZE(old);
        result = 1;
        if (PyList_GET_SIZE(obj) != old_size || n > old_size) { result = 0; break; }
        for (Py_ssize_t i = 0; i < n; i++) {
            if (PyList_GET_ITEM(obj, i) != PyTuple_GET_ITEM(old, i)) { result = 0; break; }
        }
        break;
    }
    case KIND_DICT:
        if (!PyDict_Check(obj)) { result = same_snapshot_by_call(snapshot, obj, size, old); break; }
        result = PyDict_Size(obj) == old_size && same_dict_items(obj, old, 0);
        break;
    case KIND_SET: {
        if (!PyAnySet_Check(obj)) { result = same_snapshot_by_call(snapshot, obj, size, old); break; }
        if (PySet_GET_SIZE(obj) != old_size) { result = 0; break; }
        /* The base class iterator, as set.__iter__(value) in Python: never an override. */
        PyObject *it = PySet_Type.tp_iter(obj);
        if (it == NULL)
            break;
        Py_ssize_t n = PyTuple_GET_SIZE(old);
        result = 1;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *item = PyIter_Next(it);
            if (item == NULL) {
                result = PyErr_Occurred() ? -1 : 0;
                break;
            }
            int same = item == PyTuple_GET_ITEM(old, i);
            Py_DECREF(item);
            if (!same) { result = 0; break; }
        }
        Py_DECREF(it);
        break;
    }
    case KIND_LEN: {
        Py_ssize_t now = PyObject_Size(obj);  /* len(value), as _snapshot_len */
        if (now < 0)
            break;
        result = now == old_size && PyTuple_GET_SIZE(old) == 0;
        break;
    }
    case KIND_DICT_FIELDS: {
        if (Py_TYPE(obj) != (PyTypeObject *)tp) { result = 0; break; }
        /* object.__getattribute__(value, "__dict__"), as the Python reader does. */
        PyObject *attrs = PyObject_GenericGetAttr(obj, state.s_dict);
        if (attrs == NULL) {
            PyErr_Clear();  /* the reader's snapshot is then (0, ()) */
            result = old_size == 0 && PyTuple_GET_SIZE(old) == 0;
            break;
        }
        if (!PyDict_CheckExact(attrs))
            result = old_size == 0 && PyTuple_GET_SIZE(old) == 0;
        else
            result = PyDict_Size(attrs) == old_size && same_dict_items(attrs, old, 1);
        Py_DECREF(attrs);
        break;
    }
    case KIND_ATTRIBUTE:
    case KIND_FIELDS: {
        /* What the snapshot function reads (snapshot_kind() filed it); without it, the call. */
        PyObject *spec = PyDict_GetItemWithError(state.specs, snapshot);  /* borrowed */
        if (spec == NULL) {
            if (!PyErr_Occurred())
                result = same_snapshot_by_call(snapshot, obj, size, old);
            break;
        }
        Py_INCREF(spec);  /* a descriptor may run Python code */
        result = kind == KIND_FIELDS ? same_fields(spec, obj, tp, old_size, old)
                                     : same_attribute(spec, obj, tp, old_size, old);
        if (result == -2)  /* not a node this reads natively */
            result = same_snapshot_by_call(snapshot, obj, size, old);
        Py_DECREF(spec);
        break;
    }
    default:
        result = same_snapshot_by_call(snapshot, obj, size, old);
    }
done:
    Py_DECREF(snapshot);
    Py_XDECREF(size);
    Py_XDECREF(old);
    return result;
}

/* 1 when every subnode is unchanged; 0 when one changed or an item is re-encoded every time. */
static int
subnodes_unchanged(PyObject *node, int depth)
{
    PyObject *subnodes = node_get(node, N_SUBNODES);
    if (subnodes == NULL)
        return -1;
    int result;
    if (subnodes == state.empty)
        result = 1;
    else if (!PyTuple_Check(subnodes))  /* None: an item is shown by a repr */
        result = 0;
    else {
        result = 1;
        Py_ssize_t n = PyTuple_GET_SIZE(subnodes);
        for (Py_ssize_t i = 0; i < n && result == 1; i++)
            result = unchanged(PyTuple_GET_ITEM(subnodes, i), depth + 1);
    }
    Py_DECREF(subnodes);
    return result;
}

static int
unchanged(PyObject *node, int depth)
{
    if (depth > 200) {  /* nodes nest no deeper than the depth bound (at most 64) */
        PyErr_SetString(PyExc_RecursionError, "rewind: encoder nodes nested too deep");
        return -1;
    }
    PyObject *obj = node_get(node, N_OBJ);
    if (obj == NULL)
        return -1;
    PyObject *tp = node_get(node, N_TP);
    int result = -1;
    if (tp != NULL) {
        if ((PyObject *)Py_TYPE(obj) != tp)
            result = 0;
        else {
            result = same_items(node, obj, tp);
            if (result == 1)
                result = subnodes_unchanged(node, depth);
        }
        Py_DECREF(tp);
    }
    Py_DECREF(obj);
    return result;
}

static PyObject *
nodes_unchanged(PyObject *module, PyObject *node)
{
    (void)module;
    if (state.empty == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "rewind.accelerator._nodes: configure() was not called");
        return NULL;
    }
    int result = unchanged(node, 0);
    if (result < 0)
        return NULL;
    return PyBool_FromLong(result);
}

/* encoder.ValueEncoder._stale_positions: the positions of `shown` whose last text cannot be
 * reused (a new object there, or one whose dependencies changed). */
static PyObject *
nodes_stale_positions(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3 || !PyTuple_Check(args[0]) || !PyTuple_Check(args[1]) || !PyList_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "stale_positions(shown: tuple, old_items: tuple, old_deps: list)");
        return NULL;
    }
    if (state.empty == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "rewind.accelerator._nodes: configure() was not called");
        return NULL;
    }
    PyObject *shown = args[0], *old_items = args[1], *old_deps = args[2];
    Py_ssize_t count = PyTuple_GET_SIZE(shown);
    Py_ssize_t old_count = PyTuple_GET_SIZE(old_items);
    PyObject *stale = PyList_New(0);
    if (stale == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        int reuse = 0;
        if (i < old_count && i < PyList_GET_SIZE(old_deps)
                && PyTuple_GET_ITEM(shown, i) == PyTuple_GET_ITEM(old_items, i)) {
            PyObject *dep = PyList_GET_ITEM(old_deps, i);
            if (dep == state.empty)
                reuse = 1;
            else if (dep != Py_None) {
                Py_INCREF(dep);  /* the check can run Python code (a __len__) */
                reuse = unchanged(dep, 0);
                Py_DECREF(dep);
                if (reuse < 0) {
                    Py_DECREF(stale);
                    return NULL;
                }
            }
        }
        if (!reuse) {
            PyObject *index = PyLong_FromSsize_t(i);
            if (index == NULL || PyList_Append(stale, index) < 0) {
                Py_XDECREF(index);
                Py_DECREF(stale);
                return NULL;
            }
            Py_DECREF(index);
        }
    }
    return stale;
}

static PyObject *
nodes_configure(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *empty, *node_type = NULL;
    if (!PyArg_ParseTuple(args, "O|O!", &empty, &PyType_Type, &node_type))
        return NULL;
    Py_ssize_t offsets[N_COUNT] = {0};
    if (node_type != NULL) {
        for (int i = 0; i < N_COUNT; i++) {
            /* A __slots__ entry: an object member of the class itself. */
            for (PyMemberDef *m = ((PyTypeObject *)node_type)->tp_members; m != NULL && m->name != NULL; m++) {
                if (strcmp(m->name, node_attr_names[i]) == 0 && m->type == Py_T_OBJECT_EX && m->offset > 0) {
                    offsets[i] = m->offset;
                    break;
                }
            }
            if (offsets[i] == 0) {
                PyErr_Format(PyExc_TypeError, "Node.%U is not a slot", state.names[i]);
                return NULL;
            }
        }
    }
    for (int i = 0; i < N_COUNT; i++)
        state.offsets[i] = offsets[i];
    PyObject *previous_type = state.node_type;
    Py_XINCREF(node_type);
    state.node_type = node_type;
    Py_XDECREF(previous_type);
    PyObject *previous = state.empty;
    Py_INCREF(empty);
    state.empty = empty;
    Py_XDECREF(previous);
    Py_RETURN_NONE;
}

static PyMethodDef nodes_methods[] = {
    {"unchanged", nodes_unchanged, METH_O,
     "unchanged(node) -> bool: encoder._unchanged, with the registered snapshot kinds taken natively."},
    {"stale_positions", (PyCFunction)(void (*)(void))nodes_stale_positions, METH_FASTCALL,
     "stale_positions(shown, old_items, old_deps) -> list: encoder.ValueEncoder._stale_positions in C."},
    {"configure", nodes_configure, METH_VARARGS,
     "configure(EMPTY, Node=None): the encoder's EMPTY marker, and its Node class (its slots are then read directly)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef nodes_module = {
    PyModuleDef_HEAD_INIT, "rewind.accelerator._nodes",
    "The C version of the encoder's Node check (encoder._unchanged).", -1, nodes_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__nodes(void)
{
    for (int i = 0; i < N_COUNT; i++) {
        state.names[i] = PyUnicode_InternFromString(node_attr_names[i]);
        if (state.names[i] == NULL)
            return NULL;
    }
    state.s_dict = PyUnicode_InternFromString("__dict__");
    state.s_kind = PyUnicode_InternFromString("snapshot_kind");
    state.s_attribute = PyUnicode_InternFromString("snapshot_attribute");
    state.s_fields = PyUnicode_InternFromString("snapshot_fields");
    state.kinds = PyDict_New();
    state.specs = PyDict_New();
    if (!state.s_kind || !state.s_dict || !state.s_attribute || !state.s_fields || !state.kinds || !state.specs)
        return NULL;
    PyObject *module = PyModule_Create(&nodes_module);
    if (module != NULL && PyModule_AddObject(module, "SOURCE_CRC", PyLong_FromUnsignedLong(REWIND_SOURCE_CRC)) < 0)
        Py_CLEAR(module);
    return module;
}
