"""Threads interleaving: each has its own call stack."""
import threading


def work(name, n, out):
    total = 0
    for i in range(n):
        total += i
    out[name] = total
    return total


def main():
    out = {}
    threads = [threading.Thread(target=work, args=("t%d" % i, 2000, out)) for i in range(3)]
    for t in threads:
        t.start()
    mine = work("main", 500, out)
    for t in threads:
        t.join()
    print(sorted(out.items()), mine)


main()
