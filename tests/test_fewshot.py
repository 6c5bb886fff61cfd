"""KnownDeviceMix and profile_mix: a new device as a mix of the devices already measured."""

import joblib
import numpy as np
import pytest

from skedge.fewshot import KnownDeviceMix, profile_mix


@pytest.fixture
def known():
    # 6 known devices x 400 designs, log-normal latencies with distinct rankings.
    return np.exp(np.random.RandomState(0).randn(400, 6))


def test_kernel_mix_finds_the_device_the_new_one_resembles(known):
    new = 2.5 * known[:, 3] ** 0.7
    mix = KnownDeviceMix(method="kernel").fit(known[:10], new[:10])
    assert np.argmax(mix.kernel_weights_) == 3
    assert mix.kernel_weights_.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(mix.predict(known[10:]), new[10:], rtol=1e-6)
    # temperature 0 weighs every known device equally.
    flat = KnownDeviceMix(method="kernel", temperature=0).fit(known[:10], new[:10])
    np.testing.assert_allclose(flat.kernel_weights_, np.full(6, 1 / 6))


def test_nnls_mix_recovers_a_non_negative_mix(known):
    log_new = 0.6 * np.log(known[:, 0]) + 0.3 * np.log(known[:, 4]) + 1.0
    mix = KnownDeviceMix(method="nnls").fit(known[:20], np.exp(log_new[:20]))
    assert (mix.coef_ >= 0).all()
    np.testing.assert_allclose(mix.coef_, [0.6, 0, 0, 0, 0.3, 0], atol=1e-4)
    assert mix.intercept_ == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(mix.predict(known), np.exp(log_new), rtol=1e-4)


def test_both_is_the_log_average_of_the_two_mixes(known):
    new = known[:, 1] * known[:, 2]
    both = KnownDeviceMix().fit(known[:10], new[:10]).predict(known)
    nnls = KnownDeviceMix(method="nnls").fit(known[:10], new[:10]).predict(known)
    kern = KnownDeviceMix(method="kernel").fit(known[:10], new[:10]).predict(known)
    np.testing.assert_allclose(both, np.sqrt(nnls * kern))


def test_zero_latencies_are_floored_not_lost(known):
    # NAS-Bench-201's degenerate cells read 0 ms on some devices.
    X = known.copy()
    X[0, 2] = 0.0
    X[50, 2] = 0.0
    mix = KnownDeviceMix().fit(X[:10], known[:10, 2])
    assert mix.zero_floor_[2] == X[1:10, 2].min()
    pred = mix.predict(X)
    assert np.isfinite(pred).all() and (pred > 0).all()
    # A zero in a later batch reads as the same floor: predictions do not depend on the batch.
    np.testing.assert_allclose(mix.predict(X[50:51]), pred[50:51])


@pytest.mark.parametrize(
    "X, y, match",
    [
        (-np.ones((5, 3)), np.ones(5), "Negative values"),
        (np.ones((5, 3)), -np.ones(5), "must be positive"),
        (np.full((5, 3), np.nan), np.ones(5), "NaN"),
    ],
)
def test_bad_input(X, y, match):
    with pytest.raises(ValueError, match=match):
        KnownDeviceMix().fit(X, y)


def test_predict_checks_the_number_of_known_devices(known):
    mix = KnownDeviceMix().fit(known[:10, :4], known[:10, 4])
    with pytest.raises(ValueError, match="4 features"):
        mix.predict(known[:, :3])


def test_joblib_round_trip(known, tmp_path):
    mix = KnownDeviceMix().fit(known[:10], known[:10, 0] ** 0.5)
    joblib.dump(mix, tmp_path / "mix.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "mix.joblib").predict(known),
                                  mix.predict(known))


def test_profile_mix_matches_a_noisy_prediction_to_the_known_device(known):
    rng = np.random.RandomState(1)
    # A prediction that ranks like device 4, on another scale, with noise.
    guess = 3.0 * known[:, 4] ** 0.8 * np.exp(0.2 * rng.randn(len(known)))
    mixed, w = profile_mix(guess, known, return_weights=True)
    assert np.argmax(w) == 4 and w.sum() == pytest.approx(1.0)
    # It returns the known device's *measured* latencies (its scale, not the guess's).
    np.testing.assert_allclose(mixed, known[:, 4], rtol=1e-6)
    # Temperature 0: the geometric mean of all known devices.
    flat, w0 = profile_mix(guess, known, temperature=0, return_weights=True)
    np.testing.assert_allclose(w0, np.full(6, 1 / 6))
    np.testing.assert_allclose(flat, np.exp(np.log(known).mean(axis=1)))
    np.testing.assert_array_equal(profile_mix(guess, known), mixed)


def test_profile_mix_floors_zero_latencies(known):
    X = known.copy()
    X[3, 1] = 0.0
    mixed = profile_mix(X[:, 1] + 0.5, X)
    assert np.isfinite(mixed).all() and (mixed > 0).all()


@pytest.mark.parametrize(
    "profile, known_, kwargs, match",
    [
        (np.ones(5), np.ones((4, 3)), {}, "inconsistent numbers of samples"),
        (-np.ones(5), np.ones((5, 3)), {}, "profile must hold positive"),
        (np.ones((5, 2)), np.ones((5, 3)), {}, "profile must be 1-D"),
        (np.ones(5), -np.ones((5, 3)), {}, "Negative values"),
        (np.full(5, np.nan), np.ones((5, 3)), {}, "NaN"),
        (np.ones(5), np.ones((5, 3)), {"temperature": -1},
         "'temperature' parameter of profile_mix"),
    ],
)
def test_profile_mix_bad_input(profile, known_, kwargs, match):
    with pytest.raises(ValueError, match=match):
        profile_mix(profile, known_, **kwargs)
