"""What to run: the matrix vocabulary (schema), scenario files -> validated Scenarios (scenario), models.yaml
(models), rule and gate syntax (rules), -k expressions (keyword), the default rules and the metric table
(defaults + defaults.yaml), and line-aware YAML (yamlfile). All validation happens here, at load time."""

__all__ = ["defaults", "keyword", "models", "rules", "scenario", "schema", "yamlfile"]
