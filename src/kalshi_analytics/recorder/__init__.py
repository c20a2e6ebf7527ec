"""The recorder: polling, streaming, gap repair and the batched writes into PostgreSQL."""
