"""The ground floor: what every other package agrees on (record shapes, the spool layout,
units and constants). It imports nothing of gpuledger's."""
