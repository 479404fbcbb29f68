/**
 * The two error results travel as exceptions inside an evaluation: the RFC ends check_host()
 * at once on either, wherever in a chain of include and redirect it happens.
 */
export class SpfProblem extends Error {
  constructor(
    readonly result: 'permerror' | 'temperror',
    message: string,
    /** The directive being evaluated when it happened, if any. */
    readonly mechanism?: string,
  ) {
    super(message);
    this.name = 'SpfProblem';
  }
}
