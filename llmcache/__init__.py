"""llmcache."""
