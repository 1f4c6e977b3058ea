"""The smallest numba strategy: long 1 unit after the mid ticks up, short 1 after it ticks down.

    python examples/templates/min_numba_strategy.py      # runs on the bundled sample

The callback must live at the top level of an importable module (the engine compiles a loop that
imports it by name), so when run as a script we re-import this file as a module before using it.
"""
from importlib.resources import files

from numba import njit

from tickguard.engine.layout import M_MID
from tickguard.engine.records import ST_IN_FLIGHT, ST_OPEN
from tickguard.engine.strategy import NumbaStrategy, submit_market_nb


@njit(cache=True)
def uptick_nb(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
    mid, last = mkt[0, M_MID], state[0]  # state persists across calls: the previous mid
    if reason != 0 or mid != mid or mid == last:  # a response, no quote yet (NaN), or no change
        return 0
    state[0] = mid
    if last != last or (n_orders > 0 and orders[n_orders - 1]["status"] in (ST_IN_FLIGHT, ST_OPEN)):
        return 0  # the first quote, or our previous order is still working
    diff = (1.0 if mid > last else -1.0) - pos[0]  # target +-1 unit minus the position
    return 0 if diff == 0.0 else submit_market_nb(req, 0, 0, diff)  # request count


if __name__ == "__main__":
    from min_numba_strategy import uptick_nb  # the importable twin of this script's function
    from tickguard.engine.backtest import run

    sample = str(files("tickguard.data.samples") / "synthetic_l1.parquet")
    result = run(sample, NumbaStrategy(uptick_nb, state=[float("nan")], max_requests=1))
    for key, value in result.summary.items():
        print(f"{key:>14}: {value}")
