//! ringedge: the edge proxy. Filled in by issue 3.
