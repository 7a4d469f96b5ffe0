/* Recursion headroom for the recorder's own Python code (included by _speedups.c and _nodes.c).
 *
 * The recorder runs inside the program's frames: its callbacks come from the program's
 * deepest frame.  At the program's recursion limit, a call from a callback into Python code
 * would raise RecursionError, either into the program (one call earlier than it would
 * without recording) or into the recorder as a failure.  So every call from C into Python
 * code that a callback makes goes through `headroom_call`, which raises the recursion limit
 * by HEADROOM frames while the outermost such call runs and puts the program's limit back
 * before control returns to the program.  Python-to-Python calls take no C stack on 3.11+,
 * and 200 frames of it are harmless on 3.10.
 *
 * `headroom_users` counts the calls in progress (another thread can start one while the
 * first waits for a lock or a write), so only the outermost sets and restores the limit; a
 * limit the program changed meanwhile is left as the program set it.  Each extension module
 * has its own counter: a call nested across modules sees the raised limit, raises it again
 * and restores it first. */
#ifndef REWIND_HEADROOM_H
#define REWIND_HEADROOM_H

#include <limits.h>

#define HEADROOM 200

static int headroom_users;
static int headroom_limit;  /* the limit while raised; 0 when the program's was left alone */

static inline void
headroom_take(void)
{
    if (headroom_users++ == 0) {
        int limit = Py_GetRecursionLimit();
        headroom_limit = limit <= INT_MAX - HEADROOM ? limit + HEADROOM : 0;
        if (headroom_limit != 0)
            Py_SetRecursionLimit(headroom_limit);
    }
}

static inline void
headroom_give(void)
{
    if (--headroom_users == 0 && headroom_limit != 0 && Py_GetRecursionLimit() == headroom_limit)
        Py_SetRecursionLimit(headroom_limit - HEADROOM);
}

/* PyObject_Vectorcall with headroom. */
static inline PyObject *
headroom_call(PyObject *callable, PyObject *const *args, size_t nargsf)
{
    headroom_take();
    PyObject *result = PyObject_Vectorcall(callable, args, nargsf, NULL);
    headroom_give();
    return result;
}

/* PyObject_VectorcallMethod with headroom (args[0] is the object). */
static inline PyObject *
headroom_call_method(PyObject *name, PyObject *const *args, size_t nargsf)
{
    headroom_take();
    PyObject *result = PyObject_VectorcallMethod(name, args, nargsf, NULL);
    headroom_give();
    return result;
}

#endif
