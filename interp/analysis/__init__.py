"""Pure analysis functions: tensors, models and metric tables in; tensors and dataclasses out.

Nothing here reads files or draws.
"""
