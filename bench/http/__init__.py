"""The HTTP bench (``ftscale bench``): servers, load generators, the cell state machine."""
