/**
 * What the two ARC signatures sign (RFC 8617 section 5.1.1): the ARC-Message-Signature signs
 * header fields as a DKIM signature does; the ARC-Seal signs the ARC sets from 1 to its own, each
 * as AAR, AMS, AS in relaxed form, its own with b= emptied and no final CRLF. Validation and
 * sealing build the same bytes here, so that what one signs the other checks. The
 * ARC-Message-Signature's are DKIM's (`signedHeaderData`).
 */

import { canonicalizeHeader, canonicalizeSignatureField } from '../dkim/canonicalize.js';
import type { HeaderField } from '../message/index.js';

/** The three fields of one ARC set, whichever way they were obtained. */
export interface SetFields {
  results: HeaderField;
  signature: HeaderField;
  seal: HeaderField;
}

/**
 * Relaxed forms of ARC fields, each computed once: a chain of N sets has each older field in N
 * seal inputs.
 *
 * @example
 * const forms = new RelaxedForms();
 * sealData(sets, forms);
 */
export class RelaxedForms {
  private readonly forms = new Map<HeaderField, Buffer>();

  of(field: HeaderField): Buffer {
    let form = this.forms.get(field);
    if (!form) {
      form = canonicalizeHeader(field, 'relaxed');
      this.forms.set(field, form);
    }
    return form;
  }
}

/**
 * The data an ARC-Seal signs: the sets from instance 1 up to the seal's own (the last of `sets`),
 * the last seal with its b= emptied.
 *
 * @example
 * sealData([set1, set2]).toString()
 * // 'arc-authentication-results:i=1; ...\r\narc-message-signature:...\r\narc-seal:...\r\n...arc-seal:i=2; ...; b='
 */
export function sealData(sets: readonly SetFields[], forms = new RelaxedForms()): Buffer {
  const parts: Buffer[] = [];
  sets.forEach((set, index) => {
    parts.push(forms.of(set.results), forms.of(set.signature));
    parts.push(
      index === sets.length - 1
        ? canonicalizeSignatureField(set.seal, 'relaxed')
        : forms.of(set.seal),
    );
  });
  return Buffer.concat(parts);
}
