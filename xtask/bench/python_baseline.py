"""Python baseline for `cargo xtask bench`: a re-creation of the original Python processor's
conversion loop (Pennsieve/processor-post-timeseries), written for this benchmark.

Same algorithm as the original: pynwb opens the file; for every chunk of every contiguous segment it
reads all channels' samples, scales them with numpy, and a thread pool writes one gzip (level 0)
file of big-endian float64 per channel. Usage: python_baseline.py FILE.nwb OUTPUT_DIR [CHUNK_MB]
"""
import gzip
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from pynwb import NWBHDF5IO
from pynwb.ecephys import ElectricalSeries, SpikeEventSeries


def write_chunk(samples, path):
    with gzip.open(path, mode="wb", compresslevel=0) as f:
        f.write(samples.astype(">f8").tobytes())


def main():
    path, out_dir = sys.argv[1], sys.argv[2]
    chunk = int(float(sys.argv[3]) * 2**20 / 8) if len(sys.argv) > 3 else 131072
    with NWBHDF5IO(path, "r", load_namespaces=True) as io:
        nwb = io.read()
        t0 = nwb.session_start_time.timestamp()
        index = 0
        for series in nwb.acquisition.values():
            if not isinstance(series, ElectricalSeries) or isinstance(series, SpikeEventSeries):
                continue
            n, c = series.data.shape
            conversion = series.conversion
            cc = series.channel_conversion
            scale = conversion * (np.asarray(cc[:]) if cc is not None else np.ones(c))
            offset = series.offset
            if series.timestamps is not None:
                ts = series.timestamps
                rate = round(1.0 / np.median(np.diff(ts[: min(10000, n)])))
                times = lambda i: float(ts[i]) + t0
                # contiguous segments, batch-wise as the original
                bounds, prev = [0], None
                for s in range(0, n, 100000):
                    batch = ts[s : min(s + 100000, n)]
                    if prev is not None and batch[0] - prev > 2.0 / rate:
                        bounds.append(s)
                    bounds.extend(s + 1 + np.where(np.diff(batch) > 2.0 / rate)[0])
                    prev = batch[-1]
                bounds.append(n)
                segments = list(zip(bounds[:-1], bounds[1:]))
            else:
                rate = series.rate
                times = lambda i: i / rate + t0
                segments = [(0, n)]
            with ThreadPoolExecutor() as pool:
                for a, e in segments:
                    for s in range(a, e, chunk):
                        b = min(e, s + chunk)
                        block = series.data[s:b, :] * scale + offset
                        start, end = int(times(s) * 1e6), int(times(b - 1) * 1e6)
                        futures = [
                            pool.submit(
                                write_chunk,
                                block[:, k] * 1e6,
                                os.path.join(out_dir, f"channel-{index + k:05d}_{start}_{end}.bin.gz"),
                            )
                            for k in range(c)
                        ]
                        for f in futures:
                            f.result()
            index += c


if __name__ == "__main__":
    main()
