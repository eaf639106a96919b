"""Cloud price lists read for the catalog (`gpuledger catalog refresh`): no CLI, no config."""
