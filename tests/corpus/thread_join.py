"""One thread that runs while the main thread waits for it.

start() and join() share a line, so no traced main-thread line runs while the thread does:
the order of events does not depend on scheduling (the native comparison relies on it)."""
import threading


def work(n):
    total = 0
    for i in range(n):
        total += i
    return total


results = []
worker = threading.Thread(target=lambda: results.append(work(5)))
worker.start(); worker.join()  # noqa: E702
print(results)
