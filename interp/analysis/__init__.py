"""Pure analysis functions: tensors, models and metric tables in; tensors and dataclasses out.

Nothing here reads files or draws. This namespace gathers what a notebook calls; importing
it is instant (each function's module, with torch, loads on first use). The restricted loss
at epoch 10 000 of the shipped reference run, with the final checkpoint's key frequencies
(Nanda et al. use those at every epoch; ``interp.analyze`` does too)::

    >>> import interp
    >>> from interp import analysis
    >>> run = interp.Run.load("checkpoints/nanda-p113")
    >>> task = run.task()
    >>> key = analysis.key_frequencies(run.model(), task)  # the final checkpoint's
    >>> key
    [9, 10, 30, 36]
    >>> model = run.model(10_000)
    >>> analysis.restricted_loss(model, task, key)  # the circuit has formed...
    1.60...
    >>> analysis.last_position_loss(model, task.test_inputs, task.test_targets)  # ...not grokked
    23.65...

Shapes: p is the modulus (the task's classes), d_mlp the MLP neurons, n a number of inputs.
Inputs (a, b) come either as a grid [p, p, ...] (axis 0 is a, axis 1 is b:
``neuron_activations_grid``, ``neuron_frequency_fractions``, ``fourier_2d``) or as flat rows
[p * p, ...], row a * p + b (``grid_activations``, ``progress_measures``, the task's inputs);
``x.reshape(p, p, -1)`` and ``x.reshape(p * p, -1)`` go between them. Frequencies k are
1-based, in 1..p//2. Mistakes (an empty key-frequency list, a frequency out of range, a shape
that does not fit p, a model that is not the modular transformer) raise a one-line
``interp.errors.UserError``.
"""

from importlib import import_module

# public name -> the module under interp.analysis that defines it
_EXPORTS = {
    **dict.fromkeys((
        "fourier_basis", "basis_labels", "fourier_2d", "frequency_norms",
        "embedding_fourier_norms", "embedding_frequency_norms", "neuron_frequency_fractions",
        "cluster_neurons", "NeuronClusters", "key_frequencies_from_neurons",
        "key_frequencies_from_norms", "unembed_fourier", "logit_projection", "LogitProjection",
        "attention_frequency_fractions", "check_frequencies"), "fourier"),
    **dict.fromkeys((
        "W_L", "key_frequencies", "restricted_loss", "excluded_loss", "checkpoint_progress",
        "last_position_loss", "grid_activations", "GridActivations", "analyse_checkpoint",
        "ModularAnalysis"), "modular"),
    **dict.fromkeys((
        "progress_measures", "ProgressMeasures", "gini", "squared_weights", "find_phases",
        "Phases"), "progress"),
    **dict.fromkeys((
        "ntk", "ntk_gram", "model_output", "trainable_weights", "kernel_alignment",
        "kernel_distance", "label_matrix", "top_eigenvectors", "fourier_modes",
        "fourier_overlap", "parameter_movement", "linearisation", "kernel_regression",
        "hidden_activations", "linear_cka", "task_hardness"), "lazy_rich"),
    **dict.fromkeys(("summary_statistics", "effective_statistics",
                     "committee_loss_decomposition", "CommitteeLoss"), "committee"),
    **dict.fromkeys(("CommitteeDynamics", "TheoryCurves", "ReducedState", "LeaveOneOutGap",
                     "population_flow", "reduced_flow", "leave_one_out_gap"),
                    "committee_theory"),
    **dict.fromkeys((
        "neuron_activations_grid", "fit_neuron_terms", "NeuronFit", "top_cluster_neurons",
        "embedding_circles", "EmbeddingCircle", "fourier_terms"), "neurons"),
    **dict.fromkeys(("rqi", "parallelograms", "effective_loss", "circular_rqi",
                     "circle_frequencies"), "representation"),
    **dict.fromkeys(("landmarks", "first_epoch", "format_epoch", "threshold_accuracy"),
                    "curves"),
    **dict.fromkeys(("SGLDSettings", "SGLDOverrides", "LLCEstimate", "ChainAgreement",
                     "sample_llc", "chain_agreement", "resolve_settings"), "llc"),
    **dict.fromkeys(("SharpnessSettings", "SharpnessOverrides", "resolve_sharpness",
                     "TopEigenvalue", "hessian_vector_product", "top_hessian_eigenvalue",
                     "training_loss"), "sharpness"),
    **dict.fromkeys(("softmax_collapse", "grad_weight_cosine", "orthogonal_gradient"),
                    "stability"),
    "phases_skip_reason": "progress",
    "learning_phase": "phases",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'interp.analysis' has no attribute {name!r}")
    value = getattr(import_module(f"interp.analysis.{module}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
