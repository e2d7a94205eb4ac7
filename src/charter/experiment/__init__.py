"""Champion/challenger experiments: design, pre-registration, analysis and the decision.

* :mod:`charter.experiment.design` - sample size, power and duration (``plan_experiment``) and
  the pre-registered plan of an experiment (``ExperimentPlan``, ``build_plan``);
* :mod:`charter.experiment.store` - registering experiments and recording their decisions, each
  one transaction with its audit event (``experiment.registered``, ``experiment.decided``);
* :mod:`charter.experiment.analysis` - reading A/B or shadow traffic from the decision log and
  deciding promote, keep, stop or continue (``analyze_experiment``);
* :mod:`charter.experiment.report` - the comparison report as JSON and self-contained HTML.

The statistics themselves are :mod:`charter.stats.experiments`; see docs/experiments.md.
"""
