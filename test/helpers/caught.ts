// What a unit test needs to look at an error the code under test throws.
import { PodsockError } from '../../src/errors.js';

/**
 * Runs `fn` and returns the PodsockError it throws. Anything else it throws is thrown on; returning
 * without a throw fails with 'expected a PodsockError'.
 */
export function caught(fn: () => unknown): PodsockError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PodsockError) return err;
    throw err;
  }
  throw new Error('expected a PodsockError');
}
