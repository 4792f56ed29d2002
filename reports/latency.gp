# latency.gp -- latency CDFs of the four request metrics, drawn from
# latency_cdf.csv (columns metric,latency_s,cdf; rows of one metric are
# contiguous and sorted by latency).
#
# Run by report_charts.c with the run's output directory as the working
# directory and the script on stdin; no placeholders.  Zero latencies are
# dropped because the latency axis is logarithmic; a metric without rows only
# draws a warning.
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 960,400 noenhanced font "sans,10"
} else {
    set terminal png size 960,400 noenhanced
}
set datafile separator ","
set grid xtics mxtics ytics
set key bottom right box opaque
set border 3
set tics nomirror
set logscale x 10
set format x "%g"
set yrange [0:1.02]
set ytics 0.1
set xlabel "latency (seconds, log scale)"
set ylabel "fraction of requests"
lat(m) = (strcol("metric") eq m && column("latency_s") > 0) ? column("latency_s") : NaN

set output "chart_latency.png"
set title "Latency CDFs"
plot "latency_cdf.csv" using (lat("queue")):(column("cdf")) \
        with steps lw 2 lc rgb "#937860" title "queue", \
     "" using (lat("ttft")):(column("cdf")) \
        with steps lw 2 lc rgb "#4c72b0" title "time to first token", \
     "" using (lat("tpot")):(column("cdf")) \
        with steps lw 2 lc rgb "#dd8452" title "time per output token", \
     "" using (lat("e2e")):(column("cdf")) \
        with steps lw 2 lc rgb "#55a868" title "end to end"
set output
