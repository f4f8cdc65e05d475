//! nwb-reader (under construction).
