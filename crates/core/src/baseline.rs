//! The raw-pixel baseline: what the nearest-neighbour measures score on the images themselves
//! (cosine on pixels / 255), with the same references (the training set) and the same queries
//! (the test set) as the learnt embedding's, so the difference is what training added. A
//! [`metrics::Evaluation`], sliced for a host that must stay responsive. Plain data: no device,
//! no browser.

use crate::data::Dataset;
use crate::metrics::{self, Evaluation, Metrics};

/// Pixel values (training and test images together) the baseline takes at most where memory is
/// tight (the page's worker): its buffers hold about three f32 copies of them, 190 MiB at this
/// size. mnist10k (10,000 images of 784 pixels) is 7.8 million.
pub const PAGE_BUDGET_VALUES: usize = 16 << 20;

/// Why the baseline was not computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BaselineError {
    /// Over the memory budget.
    #[error(
        "the raw-pixel kNN is not computed here for {values} pixel values (the limit is {limit}); \
         `tripletlab embed` computes it (metrics.json's raw_pixel_knn1)"
    )]
    TooLarge {
        /// Pixel values of both sets.
        values: usize,
        /// The budget.
        limit: usize,
    },
    /// The sets themselves are unusable.
    #[error("raw-pixel kNN: {0}")]
    Metrics(#[from] metrics::MetricsError),
}

/// The baseline's evaluation of `test` against `train`, ready to [`Evaluation::advance`], when
/// both sets hold at most `budget` pixel values together.
///
/// # Errors
/// [`BaselineError::TooLarge`] over the budget; otherwise those of [`Evaluation::new`].
pub fn raw_pixels(
    train: &Dataset,
    test: &Dataset,
    budget: usize,
) -> Result<Evaluation, BaselineError> {
    let values = (train.len() + test.len()) * test.image_len();
    if values > budget {
        return Err(BaselineError::TooLarge {
            values,
            limit: budget,
        });
    }
    let pixels = |set: &Dataset| {
        let mut out = Vec::new();
        set.pixels_f32(&(0..set.len()).collect::<Vec<_>>(), &mut out);
        (out, set.labels_u32())
    };
    let dim = test.image_len();
    let (train, test) = (pixels(train), pixels(test));
    Ok(Evaluation::new(
        &test.0,
        &test.1,
        Some((&train.0, &train.1)),
        dim,
    )?)
}

/// The whole baseline at once (the CLI: no budget).
///
/// # Errors
/// Those of [`raw_pixels`].
pub fn raw_pixel_metrics(train: &Dataset, test: &Dataset) -> Result<Metrics, BaselineError> {
    let mut evaluation = raw_pixels(train, test, usize::MAX)?;
    while !evaluation.advance(usize::MAX) {}
    Ok(evaluation.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(images: &[[u8; 4]], labels: &[u8]) -> Dataset {
        Dataset {
            images: images.concat(),
            labels: labels.to_vec(),
            rows: 2,
            cols: 2,
        }
    }

    #[test]
    fn pixels_are_compared_by_cosine_against_the_training_set() {
        let train = set(&[[255, 0, 0, 0], [0, 0, 0, 255]], &[1, 7]);
        // Brightness does not matter (cosine); where the ink is does.
        let test = set(
            &[[90, 10, 0, 0], [0, 0, 20, 200], [120, 0, 0, 10]],
            &[1, 7, 7],
        );
        let m = raw_pixel_metrics(&train, &test).unwrap();
        assert_eq!(m.predictions.knn1.as_deref(), Some(&[1, 7, 1][..]));
        assert!((m.knn1_acc.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        let e = raw_pixels(&train, &test, 19).err().unwrap();
        assert_eq!(
            e,
            BaselineError::TooLarge {
                values: 20,
                limit: 19
            }
        );
        assert!(raw_pixels(&train, &test, 20).is_ok());
    }
}
