"""Send shapes: steps, the stock shapes, validation and (de)serialisation (pure)."""
