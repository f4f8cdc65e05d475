//! ts-chunk-format (under construction).
