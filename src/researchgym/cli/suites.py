"""The named sets of tasks `researchgym run --suite` plays."""

SUITES = {
    "mlgym-cpu": [
        "battleOfSexes",
        "prisonersDilemma",
        "blotto",
        "3SATTime",
        "regressionKaggleHousePrice",
        "imageClassificationFMnist",
        "rl-mountain-car-continuous-cpu",
        "rl-breakout-minatar-cpu",
        "rl-meta-maze-cpu",
    ],
    "games": ["battleOfSexes", "prisonersDilemma", "blotto"],
    "rl-cpu": ["rl-mountain-car-continuous-cpu", "rl-breakout-minatar-cpu", "rl-meta-maze-cpu"],
    "rl": ["rl-mountain-car-continuous", "rl-breakout-minatar", "rl-meta-maze"],
    # The 13 MLGym-Bench tasks at the paper's budgets (GPU tasks need a GPU and the hub data).
    "mlgym": [
        "battleOfSexes",
        "prisonersDilemma",
        "blotto",
        "3SATTime",
        "regressionKaggleHousePrice",
        "imageClassificationFMnist",
        "cifar10",
        "coco-captioning",
        "mnli",
        "fineweb-lm",
        "rl-mountain-car-continuous",
        "rl-breakout-minatar",
        "rl-meta-maze",
    ],
    "offline": ["mnist-5k", "shakespeare-char", "imageClassificationFMnist", "regressionKaggleHousePrice"],
}
