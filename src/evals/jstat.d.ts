/** The part of jStat (no bundled types) the evals use: quantile functions of the t, beta and normal distributions. */
declare module 'jstat' {
  const jStat: {
    studentt: { inv(p: number, dof: number): number };
    beta: { inv(p: number, a: number, b: number): number };
    normal: { inv(p: number, mean: number, sd: number): number };
  };
  export default jStat;
}
