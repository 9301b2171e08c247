"""Proximal Policy Optimisation (PPO) for gymnax environments, compiled end to end with JAX.

One training run, from the outside in:
  PPO.train               Python loop over evaluation periods (only to print progress)
    _train_period         jitted: `lax.scan` over `evaluate_every_epochs` updates, then evaluate
      _update             collect a rollout, compute GAE, learn from it
        _collect_rollout  `lax.scan` over `n_steps`, every env stepped at once with `vmap`
        compute_gae       backward `lax.scan` over the rollout
        _learn            `lax.scan` over `epoch_ppo` epochs x `n_minibatch` minibatches
      _evaluate           `lax.while_loop` over one episode of `num_test_rollouts` fresh envs

Every jitted function is built once per `PPO` object, so the 5 runs of train.py share the
compilation: only the first run pays for it (plus one more compilation for a shorter last period
when the number of updates is not a multiple of `evaluate_every_epochs`).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import gymnax
import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState
from gymnax.environments import spaces

from networks import make_model

# ---------------------------------------------------------------------------------------------
# Action distributions. `policy` is what the network returns: logits (batch, A) for discrete
# actions, or a pair (mean, scale), each (batch, A), for a diagonal Gaussian.
# ---------------------------------------------------------------------------------------------


def sample_action(policy: Any, key: jax.Array, continuous: bool) -> jax.Array:
    """Draw one action per row. Gaussian actions stay raw (unclipped): the env clips the force
    itself, but charges its action cost on the raw value, which the policy must learn about."""
    if continuous:
        mean, scale = policy
        return mean + scale * jax.random.normal(key, mean.shape)
    return jax.random.categorical(key, policy)


def log_prob(policy: Any, action: jax.Array, continuous: bool) -> jax.Array:
    """Log-probability (density for Gaussians) of `action` under `policy`, one value per row."""
    if continuous:
        mean, scale = policy
        z = (action - mean) / scale
        return jnp.sum(-0.5 * z**2 - jnp.log(scale) - 0.5 * jnp.log(2 * jnp.pi), axis=-1)
    log_probs = jax.nn.log_softmax(policy)
    return jnp.take_along_axis(log_probs, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def entropy(policy: Any, continuous: bool) -> jax.Array:
    """Entropy of `policy`, one value per row; the bonus on it keeps exploration going."""
    if continuous:
        _, scale = policy
        return jnp.sum(0.5 + 0.5 * jnp.log(2 * jnp.pi) + jnp.log(scale), axis=-1)
    log_probs = jax.nn.log_softmax(policy)
    return -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)


# ---------------------------------------------------------------------------------------------
# Data carried through the scans.
# ---------------------------------------------------------------------------------------------


class Transition(NamedTuple):
    """One env step of every training env, as stored in the rollout (leading axis: env)."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    done: jax.Array  # terminated or truncated: either way the next obs belongs to a new episode


class Batch(NamedTuple):
    """What the loss needs per sample, flattened over (step, env)."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    target: jax.Array


class RunnerState(NamedTuple):
    """Everything that changes from one update to the next."""

    train_state: TrainState
    env_state: Any
    obs: jax.Array
    rng: jax.Array


class TrainResult(NamedTuple):
    params: Any
    log_steps: list[int]
    log_return: list[float]


# ---------------------------------------------------------------------------------------------
# The two pieces of maths: advantages and the loss.
# ---------------------------------------------------------------------------------------------


def compute_gae(
    values: jax.Array,
    rewards: jax.Array,
    dones: jax.Array,
    last_value: jax.Array,
    gamma: float,
    gae_lambda: float,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation over a rollout of shape (n_steps, num_envs).

    `last_value` is the value of the observation after the last step. A done step does not
    bootstrap: the observation after it is already the first of a fresh episode.
    Returns (advantages, value targets)."""
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    not_done = 1.0 - dones.astype(jnp.float32)
    deltas = rewards + gamma * next_values * not_done - values

    def backward(advantage: jax.Array, step: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        delta, keep = step
        advantage = delta + gamma * gae_lambda * keep * advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(last_value), (deltas, not_done), reverse=True)
    return advantages, advantages + values


def ppo_loss(
    params: Any,
    apply_fn: Callable,
    batch: Batch,
    clip_eps: float,
    critic_coeff: float,
    entropy_coeff: float,
    continuous: bool,
) -> jax.Array:
    """Clipped-ratio actor loss + critic_coeff * clipped value loss - entropy_coeff * entropy."""
    value, policy = apply_fn(params, batch.obs)

    # Advantages are standardised per minibatch so the actor's step size does not depend on the
    # scale of the rewards.
    advantage = (batch.advantage - batch.advantage.mean()) / (batch.advantage.std() + 1e-8)
    ratio = jnp.exp(log_prob(policy, batch.action, continuous) - batch.log_prob)
    clipped_ratio = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    actor_loss = -jnp.mean(jnp.minimum(ratio * advantage, clipped_ratio * advantage))

    # Clipped value loss: take the larger of the errors of the new value and of the new value held
    # within clip_eps of its rollout-time estimate, so an update gains nothing by moving it further.
    value_clipped = batch.value + jnp.clip(value - batch.value, -clip_eps, clip_eps)
    value_loss = 0.5 * jnp.mean(
        jnp.maximum(jnp.square(value - batch.target), jnp.square(value_clipped - batch.target))
    )

    return actor_loss + critic_coeff * value_loss - entropy_coeff * jnp.mean(entropy(policy, continuous))


# ---------------------------------------------------------------------------------------------
# The algorithm.
# ---------------------------------------------------------------------------------------------


def _strongly_typed(x: Any) -> jax.Array:
    """`x` as an array with the same dtype, but not weakly typed."""
    x = jnp.asarray(x)
    return x.astype(x.dtype)


class PPO:
    """PPO for one `train_config`: builds the env, the network, the optimiser and the jitted
    training functions once, then trains any number of runs with `train`."""

    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.env, self.env_params = gymnax.make(config["env_name"])
        action_space = self.env.action_space(self.env_params)
        self.continuous = isinstance(action_space, spaces.Box)
        action_dim = action_space.shape[0] if self.continuous else action_space.n
        self.model = make_model(config["network_config"], action_dim, self.continuous)

        self.num_envs = int(config["num_train_envs"])
        self.n_steps = int(config["n_steps"])
        self.steps_per_update = self.num_envs * self.n_steps
        self.num_updates = max(1, int(config["num_train_steps"]) // self.steps_per_update)
        self.n_minibatch = int(config["n_minibatch"])
        self.minibatch_size = self.steps_per_update // self.n_minibatch
        if self.minibatch_size < 1:
            raise ValueError(f"n_minibatch={self.n_minibatch} exceeds the batch of {self.steps_per_update} steps")
        self.epoch_ppo = int(config["epoch_ppo"])
        self.evaluate_every = max(1, int(config["evaluate_every_epochs"]))
        self.num_test_rollouts = int(config["num_test_rollouts"])
        self.tx = self._make_optimizer()

        self._reset = jax.vmap(self.env.reset, in_axes=(0, None))
        self._step = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))
        self._train_period_jit = jax.jit(self._train_period, static_argnames="num_updates")

    def _make_optimizer(self) -> optax.GradientTransformation:
        """Adam behind global-norm clipping. The learning rate moves linearly from lr_begin to
        lr_end over the first lr_warmup fraction of all optimiser steps, then stays at lr_end
        (lr_warmup > 1 means lr_end is never reached)."""
        total_steps = self.num_updates * self.epoch_ppo * self.n_minibatch
        schedule = optax.linear_schedule(
            init_value=float(self.config["lr_begin"]),
            end_value=float(self.config["lr_end"]),
            transition_steps=max(1, int(float(self.config["lr_warmup"]) * total_steps)),
        )
        return optax.chain(
            optax.clip_by_global_norm(float(self.config["max_grad_norm"])),
            optax.adam(learning_rate=schedule, eps=1e-5),
        )

    def init_params(self, key: jax.Array) -> Any:
        """Fresh network parameters, initialised from `key`."""
        dummy_obs = jnp.zeros((1,) + self.env.observation_space(self.env_params).shape, jnp.float32)
        return self.model.init(key, dummy_obs)

    def train(
        self, rng: jax.Array, params: Any, log: Callable[[int, float], None] | None = None
    ) -> TrainResult:
        """Train `params` for `num_updates` updates, evaluating every `evaluate_every_epochs`
        updates and after the last one. `log(env_steps, mean_return)` is called after each
        evaluation; the env step counts and returns are also returned."""
        rng, reset_key = jax.random.split(rng)
        obs, env_state = self._reset(jax.random.split(reset_key, self.num_envs), self.env_params)
        train_state = TrainState.create(apply_fn=self.model.apply, params=params, tx=self.tx)
        runner = RunnerState(train_state, env_state, obs, rng)

        log_steps: list[int] = []
        log_return: list[float] = []
        updates_done = 0
        while updates_done < self.num_updates:
            num_updates = min(self.evaluate_every, self.num_updates - updates_done)
            # gymnax leaves some env-state fields weakly typed after a reset or a step (the type
            # JAX gives Python scalars). Fixing the types keeps the signature of every call the
            # same, so all periods (and all runs) share one compilation.
            runner = jax.tree_util.tree_map(_strongly_typed, runner)
            runner, mean_return = self._train_period_jit(runner, num_updates=num_updates)
            updates_done += num_updates
            log_steps.append(updates_done * self.steps_per_update)
            log_return.append(float(mean_return))
            if log is not None:
                log(log_steps[-1], log_return[-1])
        return TrainResult(runner.train_state.params, log_steps, log_return)

    def _train_period(self, runner: RunnerState, num_updates: int) -> tuple[RunnerState, jax.Array]:
        """`num_updates` PPO updates followed by one evaluation (jitted as a whole)."""
        runner, _ = jax.lax.scan(self._update, runner, length=num_updates)
        rng, eval_key = jax.random.split(runner.rng)
        return runner._replace(rng=rng), self._evaluate(runner.train_state.params, eval_key)

    def _update(self, runner: RunnerState, _: None) -> tuple[RunnerState, None]:
        """One PPO update: collect `n_steps` from every env, then learn from that batch."""
        runner, trajectory = self._collect_rollout(runner)
        last_value, _ = self.model.apply(runner.train_state.params, runner.obs)
        advantages, targets = compute_gae(
            trajectory.value,
            trajectory.reward,
            trajectory.done,
            last_value,
            float(self.config["gamma"]),
            float(self.config["gae_lambda"]),
        )
        batch = Batch(
            trajectory.obs, trajectory.action, trajectory.log_prob, trajectory.value, advantages, targets
        )
        batch = jax.tree_util.tree_map(lambda x: x.reshape((self.steps_per_update,) + x.shape[2:]), batch)
        rng, learn_key = jax.random.split(runner.rng)
        train_state = self._learn(runner.train_state, batch, learn_key)
        return runner._replace(train_state=train_state, rng=rng), None

    def _collect_rollout(self, runner: RunnerState) -> tuple[RunnerState, Transition]:
        """Step every training env `n_steps` times with the current policy. gymnax resets an env
        by itself when its episode ends, so the rollout simply runs on across episodes."""

        def env_step(runner: RunnerState, _: None) -> tuple[RunnerState, Transition]:
            rng, action_key, step_key = jax.random.split(runner.rng, 3)
            value, policy = self.model.apply(runner.train_state.params, runner.obs)
            action = sample_action(policy, action_key, self.continuous)
            obs, env_state, reward, terminated, truncated, _ = self._step(
                jax.random.split(step_key, self.num_envs), runner.env_state, action, self.env_params
            )
            transition = Transition(
                runner.obs,
                action,
                log_prob(policy, action, self.continuous),
                value,
                reward,
                jnp.logical_or(terminated, truncated),
            )
            return RunnerState(runner.train_state, env_state, obs, rng), transition

        return jax.lax.scan(env_step, runner, length=self.n_steps)

    def _learn(self, train_state: TrainState, batch: Batch, rng: jax.Array) -> TrainState:
        """`epoch_ppo` passes over the batch, each split into `n_minibatch` minibatches by a fresh
        random permutation (a remainder that does not fill a minibatch is left out)."""
        loss_grad = jax.grad(ppo_loss)
        loss_settings = dict(
            apply_fn=self.model.apply,
            clip_eps=float(self.config["clip_eps"]),
            critic_coeff=float(self.config["critic_coeff"]),
            entropy_coeff=float(self.config["entropy_coeff"]),
            continuous=self.continuous,
        )

        def minibatch_step(train_state: TrainState, minibatch: Batch) -> tuple[TrainState, None]:
            grads = loss_grad(train_state.params, batch=minibatch, **loss_settings)
            return train_state.apply_gradients(grads=grads), None

        def epoch(train_state: TrainState, key: jax.Array) -> tuple[TrainState, None]:
            order = jax.random.permutation(key, self.steps_per_update)
            order = order[: self.n_minibatch * self.minibatch_size].reshape(self.n_minibatch, -1)
            minibatches = jax.tree_util.tree_map(lambda x: x[order], batch)
            train_state, _ = jax.lax.scan(minibatch_step, train_state, minibatches)
            return train_state, None

        train_state, _ = jax.lax.scan(epoch, train_state, jax.random.split(rng, self.epoch_ppo))
        return train_state

    def _evaluate(self, params: Any, rng: jax.Array) -> jax.Array:
        """Mean return of one episode in each of `num_test_rollouts` fresh envs, with sampled
        actions. An env's return stops counting at its first done (the env auto-resets after it);
        the loop stops once every env is done or after `max_steps_in_episode` steps."""
        reset_key, rng = jax.random.split(rng)
        obs, env_state = self._reset(jax.random.split(reset_key, self.num_test_rollouts), self.env_params)
        returns = jnp.zeros(self.num_test_rollouts)
        finished = jnp.zeros(self.num_test_rollouts, dtype=bool)
        max_steps = self.env_params.max_steps_in_episode

        def not_over(carry: tuple) -> jax.Array:
            step, *_, finished = carry
            return jnp.logical_and(step < max_steps, jnp.logical_not(jnp.all(finished)))

        def env_step(carry: tuple) -> tuple:
            step, rng, obs, env_state, returns, finished = carry
            rng, action_key, step_key = jax.random.split(rng, 3)
            _, policy = self.model.apply(params, obs)
            action = sample_action(policy, action_key, self.continuous)
            obs, env_state, reward, terminated, truncated, _ = self._step(
                jax.random.split(step_key, self.num_test_rollouts), env_state, action, self.env_params
            )
            returns = returns + jnp.where(finished, 0.0, reward)
            finished = finished | terminated | truncated
            return step + 1, rng, obs, env_state, returns, finished

        carry = (0, rng, obs, env_state, returns, finished)
        _, _, _, _, returns, _ = jax.lax.while_loop(not_over, env_step, carry)
        return returns.mean()
