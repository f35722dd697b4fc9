//! Binary search over positions `0..count` of a sorted on-disk or in-memory sequence, where
//! reading a position may fail (a damaged file).

/// The first position in `0..count` where `before` is false, given that `before` is true
/// for a prefix and false after it (like `slice::partition_point`).
pub(crate) fn partition_point<E>(
    count: u64,
    mut before: impl FnMut(u64) -> Result<bool, E>,
) -> Result<u64, E> {
    let (mut lo, mut hi) = (0, count);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid)? {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// [`partition_point`] for a position read that cannot fail.
pub(crate) fn partition_point_infallible(count: u64, mut before: impl FnMut(u64) -> bool) -> u64 {
    match partition_point::<std::convert::Infallible>(count, |i| Ok(before(i))) {
        Ok(point) => point,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_position_not_before() {
        let values = [1u64, 3, 3, 5, 8];
        for target in 0..10 {
            let want = values.partition_point(|&v| v < target) as u64;
            let got =
                partition_point_infallible(values.len() as u64, |i| values[i as usize] < target);
            assert_eq!(got, want, "target {target}");
        }
        assert_eq!(partition_point_infallible(0, |_| true), 0);
        let failing: Result<u64, &str> = partition_point(5, |_| Err("damaged"));
        assert_eq!(failing, Err("damaged"));
    }
}
