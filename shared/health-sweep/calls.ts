/** API calls made by the sweeps, per service (the bench and each sweep's result read them). */
export interface ApiCalls {
  compute: number;
  consul: number;
  monitoring: number;
}

export const noCalls = (): ApiCalls => ({ compute: 0, consul: 0, monitoring: 0 });
