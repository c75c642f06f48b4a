"""What a person or a CI job reads: JUnit (junit), the markdown summary and run folders (summary), PNG figures
(plots)."""

__all__ = ["junit", "plots", "summary"]
