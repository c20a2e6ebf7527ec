"""Paper trading: sessions, the live runner that follows the recorder's commits, performance, divergence reports."""
