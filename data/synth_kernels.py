"""The event loop of the synthetic market: one instrument, one event at a time, state carried.

Kept apart from :mod:`tickguard.data.synth` (configuration, streaming, merging) so the numba
kernel can be read on its own. :func:`simulate_py` is plain Python; :data:`simulate_nb` is the
same function compiled by numba (tests assert both write identical rows). All randomness comes from
the ``np.random.Generator`` passed in (numba advances the caller's generator), never from numba's
global ``np.random`` state, so a stream stopped between events and resumed with the carried state
is identical to an uninterrupted one: that is what makes output independent of chunk size.

Model (calendar time ``t`` in seconds since the start):

* arrivals: a 2-d Hawkes process (quote updates, trades) with exponential kernels, simulated
  exactly by Ogata thinning (intensities only decay between events, so the current intensity
  bounds them until the next event);
* latent log-price: Brownian motion with stochastic volatility ``sigma * exp(h)`` where ``h`` is
  an Ornstein-Uhlenbeck log-volatility (exact OU transition), plus compound-Poisson jumps
  (Laplace or normal sizes), plus a small permanent impact of each trade;
* spread: a continuous-time Markov chain over spread sizes in ticks; a quote update re-anchors
  the touch around the latent mid: ``bid = round(mid/tick - s/2)``, ``ask = bid + s``;
* sizes: touch (and depth) sizes lognormal in lots (>= 1); trade sizes ``1 + floor(scale * Lomax)``
  lots (Pareto tail); trade side buy with probability ``logistic(k * imbalance)``; a trade prints
  at the touch and depletes it; when a level is used up the touch moves one tick away.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "N_PF",
    "N_PI",
    "N_SF",
    "N_SI",
    "simulate_nb",
    "simulate_py",
]

# --- float parameters (pf) ------------------------------------------------------------------
PF_TICK, PF_INV_TICK, PF_LOT, PF_INV_LOT = 0, 1, 2, 3  # INV_* = 0: grid step is not 1/integer
PF_LOGP0, PF_SIGMA, PF_LOGVOL_SD, PF_LOGVOL_KAPPA = 4, 5, 6, 7
PF_JUMP_RATE, PF_JUMP_SCALE, PF_JUMP_LAPLACE = 8, 9, 10
PF_MU_Q, PF_MU_T, PF_A_QQ, PF_A_QT, PF_A_TQ, PF_A_TT, PF_BETA_Q, PF_BETA_T = range(11, 19)
PF_SIZE_LOGMED, PF_SIZE_SIGMA = 19, 20
PF_TRADE_SCALE, PF_TRADE_TAIL, PF_TRADE_MAX = 21, 22, 23
PF_IMB_SENS, PF_IMPACT, PF_JITTER_NS, PF_DEPTH_REFRESH = 24, 25, 26, 27
N_PF = 28
# --- integer parameters (pi) ----------------------------------------------------------------
PI_START_NS, PI_LATENCY_NS, PI_INSTRUMENT = 0, 1, 2
N_PI = 3
# --- float state (sf) -----------------------------------------------------------------------
SF_T, SF_LOGP, SF_H, SF_E_QQ, SF_E_QT, SF_E_TQ, SF_E_TT, SF_NEXT_JUMP, SF_NEXT_SWITCH = range(9)
N_SF = 9
# --- integer state (si) ---------------------------------------------------------------------
SI_INIT, SI_SPREAD, SI_BID, SI_ASK, SI_BID_SZ, SI_ASK_SZ, SI_LAST_LOCAL = range(7)
N_SI = 7

_QUOTE = 1  # schema.KIND_QUOTE (numba freezes module globals; plain ints keep both twins equal)
_TRADE = 2  # schema.KIND_TRADE
_DEPTH = 4  # schema.KIND_DEPTH
_LAST = 256  # schema.KIND_LAST_IN_BATCH


def simulate_py(out, row, target, pf, pi, spread_ticks, spread_rates, sf, si, book, old, rng):
    """Append whole events to ``out`` from index ``row`` until at least ``target`` rows are filled.

    ``out`` needs room for ``target + 4 * levels + 2`` rows (one event writes at most a trade,
    ``2 * levels`` deletions, ``2 * levels`` level updates and a quote). ``sf``/``si``/``book``
    are updated in place; ``old`` is scratch of ``book``'s shape. Returns the new row count.
    """
    n_lv = book.shape[1]
    tick, inv_tick, lot, inv_lot = pf[PF_TICK], pf[PF_INV_TICK], pf[PF_LOT], pf[PF_INV_LOT]
    size_mu, size_sd = pf[PF_SIZE_LOGMED], pf[PF_SIZE_SIGMA]
    min_bid = max(1, n_lv)  # keeps every displayed bid level at a positive price
    inst = pi[PI_INSTRUMENT]
    while row < target:
        t = sf[SF_T]
        if si[SI_INIT] == 0:  # first event: an initial quote at t = 0, state drawn from stationarity
            si[SI_INIT] = 1
            kind = _QUOTE
            sf[SF_LOGP] = pf[PF_LOGP0]
            sf[SF_H] = pf[PF_LOGVOL_SD] * rng.standard_normal()
            sf[SF_NEXT_JUMP] = rng.exponential(1.0 / pf[PF_JUMP_RATE]) if pf[PF_JUMP_RATE] > 0 else np.inf
            r0 = spread_rates[0].sum()
            sf[SF_NEXT_SWITCH] = rng.exponential(1.0 / r0) if r0 > 0 else np.inf
            si[SI_SPREAD] = 0
            si[SI_LAST_LOCAL] = -(2**62)
            t_prev = 0.0
        else:  # Ogata thinning on the 2-d Hawkes intensity
            t_prev = t
            lam_bar = pf[PF_MU_Q] + sf[SF_E_QQ] + sf[SF_E_QT] + pf[PF_MU_T] + sf[SF_E_TQ] + sf[SF_E_TT]
            while True:
                w = rng.exponential(1.0 / lam_bar)
                t += w
                dq = math.exp(-pf[PF_BETA_Q] * w)
                dt_ = math.exp(-pf[PF_BETA_T] * w)
                sf[SF_E_QQ] *= dq
                sf[SF_E_TQ] *= dq
                sf[SF_E_QT] *= dt_
                sf[SF_E_TT] *= dt_
                lam_q = pf[PF_MU_Q] + sf[SF_E_QQ] + sf[SF_E_QT]
                lam_t = pf[PF_MU_T] + sf[SF_E_TQ] + sf[SF_E_TT]
                u = rng.random() * lam_bar
                if u < lam_q:
                    kind = _QUOTE
                    sf[SF_E_QQ] += pf[PF_A_QQ]
                    sf[SF_E_TQ] += pf[PF_A_TQ]
                    break
                if u < lam_q + lam_t:
                    kind = _TRADE
                    sf[SF_E_QT] += pf[PF_A_QT]
                    sf[SF_E_TT] += pf[PF_A_TT]
                    break
                lam_bar = lam_q + lam_t
            sf[SF_T] = t
        # latent price over (t_prev, t]: jumps at their times, SV diffusion, exact OU log-vol
        while sf[SF_NEXT_JUMP] <= t:
            if pf[PF_JUMP_LAPLACE] > 0:
                sf[SF_LOGP] += rng.laplace(0.0, pf[PF_JUMP_SCALE])
            else:
                sf[SF_LOGP] += rng.normal(0.0, pf[PF_JUMP_SCALE])
            sf[SF_NEXT_JUMP] += rng.exponential(1.0 / pf[PF_JUMP_RATE])
        dt = t - t_prev
        if dt > 0:
            sig = pf[PF_SIGMA] * math.exp(sf[SF_H])
            sf[SF_LOGP] += sig * math.sqrt(dt) * rng.standard_normal() - 0.5 * sig * sig * dt
            a = math.exp(-pf[PF_LOGVOL_KAPPA] * dt)
            sf[SF_H] = sf[SF_H] * a + pf[PF_LOGVOL_SD] * math.sqrt(1.0 - a * a) * rng.standard_normal()
        while sf[SF_NEXT_SWITCH] <= t:  # spread regime chain
            cur = si[SI_SPREAD]
            u = rng.random() * spread_rates[cur].sum()
            nxt = 0
            acc = spread_rates[cur, 0]
            while acc <= u and nxt < spread_rates.shape[0] - 1:
                nxt += 1
                acc += spread_rates[cur, nxt]
            si[SI_SPREAD] = nxt
            r_out = spread_rates[nxt].sum()
            sf[SF_NEXT_SWITCH] = sf[SF_NEXT_SWITCH] + rng.exponential(1.0 / r_out) if r_out > 0 else np.inf
        # timestamps: one batch, one exchange time; FIFO feed => ts_local = max(ts_exch + lat, last)
        ts_exch = pi[PI_START_NS] + np.int64(t * 1e9)
        jit = np.int64(rng.exponential(pf[PF_JITTER_NS])) if pf[PF_JITTER_NS] > 0 else np.int64(0)
        ts_local = max(ts_exch + pi[PI_LATENCY_NS] + jit, si[SI_LAST_LOCAL])
        si[SI_LAST_LOCAL] = ts_local
        ob, oa = si[SI_BID], si[SI_ASK]
        if kind == _QUOTE and si[SI_BID_SZ] == 0:  # initial book: nothing displayed before
            ob, oa = np.int64(0), np.int64(0)
        for s in range(2):
            for k in range(n_lv):
                old[s, k] = book[s, k]
        nb, na = ob, oa
        if kind == _QUOTE:
            sp = spread_ticks[si[SI_SPREAD]]
            mid = math.exp(sf[SF_LOGP]) / tick
            nb = max(np.int64(math.floor(mid - 0.5 * sp + 0.5)), np.int64(min_bid))
            na = nb + sp
            bsz = max(np.int64(1), np.int64(math.floor(rng.lognormal(size_mu, size_sd) + 0.5)))
            asz = max(np.int64(1), np.int64(math.floor(rng.lognormal(size_mu, size_sd) + 0.5)))
            for s in range(2):  # shift each side's levels to the new touch; new levels fresh
                off = ob - nb if s == 0 else na - oa
                if si[SI_BID_SZ] == 0:
                    off = n_lv  # initial book: every level new
                for k in range(1, n_lv):
                    j = k + off
                    if 0 <= j < n_lv:
                        book[s, k] = old[s, j]
                    else:
                        book[s, k] = max(np.int64(1), np.int64(math.floor(rng.lognormal(size_mu, size_sd) + 0.5)))
                if n_lv > 1 and rng.random() < pf[PF_DEPTH_REFRESH]:
                    k = 1 + np.int64(rng.random() * (n_lv - 1))
                    book[s, k] = max(np.int64(1), np.int64(math.floor(rng.lognormal(size_mu, size_sd) + 0.5)))
        else:  # trade at the touch
            bsz, asz = si[SI_BID_SZ], si[SI_ASK_SZ]
            imb = (bsz - asz) / (bsz + asz)
            side = 1 if rng.random() < 1.0 / (1.0 + math.exp(-pf[PF_IMB_SENS] * imb)) else -1
            q = min(pf[PF_TRADE_SCALE] * rng.pareto(pf[PF_TRADE_TAIL]), pf[PF_TRADE_MAX] - 1.0)
            qi = np.int64(1 + math.floor(q))  # capped before the cast: a Pareto draw can be huge
            px_t = oa if side == 1 else ob
            s = 1 if side == 1 else 0
            left = (asz if side == 1 else bsz) - qi
            if left <= 0 and (side == 1 or ob - 1 >= min_bid):  # level used up: touch moves away
                for k in range(n_lv - 1):
                    book[s, k] = old[s, k + 1]
                fresh = max(np.int64(1), np.int64(math.floor(rng.lognormal(size_mu, size_sd) + 0.5)))
                if n_lv > 0:
                    book[s, n_lv - 1] = fresh
                    fresh = book[s, 0]
                if side == 1:
                    na, asz = oa + 1, fresh
                else:
                    nb, bsz = ob - 1, fresh
            elif left <= 0:  # (bid pinned at its floor: the level refills instead)
                bsz = max(np.int64(1), np.int64(math.floor(rng.lognormal(size_mu, size_sd) + 0.5)))
            elif side == 1:
                asz = left
            else:
                bsz = left
            sf[SF_LOGP] += side * pf[PF_IMPACT] * math.sqrt(qi / pf[PF_TRADE_SCALE])
            r = out[row]
            r["ts_exch"] = ts_exch
            r["ts_local"] = ts_local
            r["instrument"] = inst
            r["kind"] = _TRADE
            r["side"] = side
            r["level"] = 0
            r["price"] = px_t / inv_tick if inv_tick > 0 else px_t * tick
            r["size"] = qi / inv_lot if inv_lot > 0 else qi * lot
            r["bid_px"] = np.nan
            r["bid_sz"] = np.nan
            r["ask_px"] = np.nan
            r["ask_sz"] = np.nan
            row += 1
        if n_lv > 0:
            book[0, 0], book[1, 0] = bsz, asz
            # depth rows: all deletions first (both sides), then updates, so the book applied row
            # by row is never crossed; a size of 0 deletes the price level
            for phase in range(2):
                for s in range(2):
                    dirn = -1 if s == 0 else 1
                    ot, nt = (ob, nb) if s == 0 else (oa, na)
                    off = dirn * (nt - ot)
                    for k in range(n_lv):
                        if phase == 0:  # old level k gone from the new window?
                            if old[s, k] == 0 or 0 <= k - off < n_lv:
                                continue
                            px, sz, lvl = ot + dirn * k, np.int64(0), k
                        else:  # new level k: emit when its size differs from the old one there
                            j = k + off
                            prev = old[s, j] if 0 <= j < n_lv else np.int64(0)
                            if prev == book[s, k]:
                                continue
                            px, sz, lvl = nt + dirn * k, book[s, k], k
                        r = out[row]
                        r["ts_exch"] = ts_exch
                        r["ts_local"] = ts_local
                        r["instrument"] = inst
                        r["kind"] = _DEPTH
                        r["side"] = 1 if s == 0 else -1
                        r["level"] = lvl
                        r["price"] = px / inv_tick if inv_tick > 0 else px * tick
                        r["size"] = sz / inv_lot if inv_lot > 0 else sz * lot
                        r["bid_px"] = np.nan
                        r["bid_sz"] = np.nan
                        r["ask_px"] = np.nan
                        r["ask_sz"] = np.nan
                        row += 1
        si[SI_BID], si[SI_ASK], si[SI_BID_SZ], si[SI_ASK_SZ] = nb, na, bsz, asz
        r = out[row]
        r["ts_exch"] = ts_exch
        r["ts_local"] = ts_local
        r["instrument"] = inst
        r["kind"] = _QUOTE | _LAST
        r["side"] = 0
        r["level"] = 0
        r["price"] = np.nan
        r["size"] = np.nan
        r["bid_px"] = nb / inv_tick if inv_tick > 0 else nb * tick
        r["ask_px"] = na / inv_tick if inv_tick > 0 else na * tick
        r["bid_sz"] = bsz / inv_lot if inv_lot > 0 else bsz * lot
        r["ask_sz"] = asz / inv_lot if inv_lot > 0 else asz * lot
        row += 1
    return row


simulate_nb = njit(cache=True)(simulate_py)
