#!/usr/bin/env python3
"""Dump what pynwb sees in an NWB file, as one JSON object (the reference for nwb-reader tests).

Usage: python pynwb_dump.py FILE

Prints {"file", "session_start_time", "timestamps_reference_time", "series": [...]} where each
series is an ElectricalSeries (isinstance, SpikeEventSeries excluded) found in /acquisition
(also inside LFP / FilteredEphys containers) or in /processing:
  path, neurodata_type, shape, rate, starting_time,
  data_in_units_f64be_hex (get_data_in_units(), row-major, big-endian f64),
  timestamps_f64be_hex (get_timestamps(), big-endian f64),
  electrode_rows (0-based table rows), channel_names (channel_name column, else label, else null).
Exits non-zero with a message on stderr when pynwb cannot read the file.
"""
import json
import sys
import warnings

import numpy as np


def series_entries(nwb):
    from pynwb.ecephys import ElectricalSeries, SpikeEventSeries

    def walk(container, prefix):
        for name in sorted(container.keys() if hasattr(container, "keys") else []):
            obj = container[name]
            path = f"{prefix}/{name}"
            if isinstance(obj, ElectricalSeries):
                if not isinstance(obj, SpikeEventSeries):
                    yield path, obj
            elif hasattr(obj, "electrical_series"):  # LFP, FilteredEphys
                for sub_name in sorted(obj.electrical_series):
                    sub = obj.electrical_series[sub_name]
                    if not isinstance(sub, SpikeEventSeries):
                        yield f"{path}/{sub_name}", sub

    yield from walk(nwb.acquisition, "/acquisition")
    for module_name in sorted(nwb.processing):
        module = nwb.processing[module_name]
        yield from walk(module.data_interfaces, f"/processing/{module_name}")


def f64be_hex(values):
    return np.ascontiguousarray(np.asarray(values, dtype=">f8")).tobytes().hex()


def channel_names(table, rows):
    for column in ("channel_name", "label"):
        if column in table.colnames:
            values = table[column].data[:]
            return [str(values[r].decode() if isinstance(values[r], bytes) else values[r]) for r in rows]
    return None


def describe(path, es):
    data = np.asarray(es.data[:])
    rows = [int(r) for r in np.asarray(es.electrodes.data[:])]
    return {
        "path": path,
        "neurodata_type": es.neurodata_type,
        "shape": list(data.shape),
        "rate": None if es.rate is None else float(es.rate),
        "starting_time": None if es.starting_time is None else float(es.starting_time),
        "data_in_units_f64be_hex": f64be_hex(es.get_data_in_units()),
        "timestamps_f64be_hex": f64be_hex(es.get_timestamps()),
        "electrode_rows": rows,
        "channel_names": channel_names(es.electrodes.table, rows),
    }


def main():
    if len(sys.argv) != 2:
        print("usage: pynwb_dump.py FILE", file=sys.stderr)
        return 2
    from pynwb import NWBHDF5IO

    path = sys.argv[1]
    warnings.simplefilter("ignore")
    try:
        with NWBHDF5IO(path, "r") as io:
            nwb = io.read()
            out = {
                "file": path,
                "session_start_time": nwb.session_start_time.isoformat(),
                "timestamps_reference_time": nwb.timestamps_reference_time.isoformat(),
                "series": [describe(p, es) for p, es in series_entries(nwb)],
            }
    except Exception as e:  # any failure to read is the answer "pynwb cannot read it"
        print(f"pynwb cannot read {path}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
