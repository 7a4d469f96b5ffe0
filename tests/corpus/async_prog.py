"""async/await: coroutines, gather, an async generator."""
import asyncio


async def fetch(n):
    await asyncio.sleep(0)
    value = n * 10
    return value


async def ticker(limit):
    for i in range(limit):
        yield i
        await asyncio.sleep(0)


async def main():
    results = await asyncio.gather(fetch(1), fetch(2))
    ticks = [t async for t in ticker(3)]
    single = await fetch(5)
    print(results, ticks, single)


asyncio.run(main())
