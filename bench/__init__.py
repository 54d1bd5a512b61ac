"""The measurement programs: `make bench` (costs.py), `make bench-churn`
(churn.py), one hook run step by step (steps.py), and what `make bench`
last measured (latest.json). They run in the labs of testlab/ and are not
part of them."""
