/**
 * core's constantTimeEqual (client tokens in the agent, tokens in the server): the same answer as `===` on any
 * strings, lone surrogates and other lengths included.
 */
import fc from 'fast-check';
import { constantTimeEqual } from '../../core/crypto';

test('agrees with === on generated pairs, equal-length ones in particular', () => {
  const unit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
  const text = fc.string({ unit, maxLength: 70 });
  fc.assert(
    fc.property(text, text, (a, b) => {
      expect(constantTimeEqual(a, b)).toBe(a === b);
      expect(constantTimeEqual(a, a)).toBe(true);
    }),
    { numRuns: 2000 },
  );
  // Same length, one unit apart, at every position of a 64-character token.
  const token = 'a1'.repeat(32);
  for (let i = 0; i < token.length; i++) {
    const other = token.slice(0, i) + 'b' + token.slice(i + 1);
    expect(constantTimeEqual(token, other)).toBe(false);
  }
  expect(constantTimeEqual('\ud800', '\udc00')).toBe(false); // two lone surrogates (equal once encoded as UTF-8)
  expect(constantTimeEqual('', '')).toBe(true);
  expect(constantTimeEqual(token, token + 'a')).toBe(false);
});
